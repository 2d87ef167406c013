/**
 * A JobSpec made whole: every unset field filled from the defaults table
 * (job-spec-defaults.ts), then every field checked (validate-job-spec.ts). Each process
 * does it once, where a spec enters it (flags, a file, an environment variable, a gRPC
 * call), and everything after takes the ResolvedJobSpec it returns.
 */
import { clone, create } from "@bufbuild/protobuf";
import type { JobSpec } from "@trainfleet/proto";
import { JobSpecSchema } from "@trainfleet/proto";
import {
  defaultJobId,
  defaultJobSpec,
  defaultMaxWorkers,
  defaultMinWorkers,
  defaultShards,
  optimizerDefaults,
} from "./job-spec-defaults.js";
import { validateJobSpec } from "./validate-job-spec.js";

declare const resolved: unique symbol;

/**
 * A JobSpec with every default filled in and every field checked. Only resolveJobSpec
 * makes one, so a function that takes it need not (and cannot be asked to) resolve again.
 */
export type ResolvedJobSpec = JobSpec & { readonly [resolved]: true };

/**
 * Fills unset fields (zero, empty or absent in proto3) from the defaults, then validates;
 * throws INVALID_ARGUMENT naming the first bad field. Idempotent: a resolved spec resolves
 * to an equal one, so a spec that crosses to another process can be checked there again.
 */
export function resolveJobSpec(input: JobSpec): ResolvedJobSpec {
  const spec = clone(JobSpecSchema, input);
  // The default model and optimizer as messages of their own: a resolved spec shares no array with the table.
  const defaults = clone(JobSpecSchema, create(JobSpecSchema, defaultJobSpec));
  // The messages a spec may leave out, empty: each of their fields is filled below, one by one.
  const empty = create(JobSpecSchema, { dataset: {}, training: {}, workers: {}, parameterServers: {}, checkpoints: {} });
  if (spec.model?.kind.case === undefined) spec.model = defaults.model;
  spec.dataset ??= empty.dataset!;
  // A sharded dataset has no name; without a manifest the built-in default is the dataset.
  if (spec.dataset.manifest === "") spec.dataset.name ||= defaultJobSpec.dataset.name;
  spec.jobId ||= defaultJobId(spec.dataset);

  spec.training ??= empty.training!;
  const training = spec.training;
  training.epochs ||= defaultJobSpec.training.epochs;
  training.batchSizePerWorker ||= defaultJobSpec.training.batchSizePerWorker;
  training.seed ||= defaultJobSpec.training.seed;
  if (training.optimizer?.kind.case === undefined) training.optimizer = defaults.training!.optimizer;
  const optimizer = training.optimizer!.kind;
  if (optimizer.case === "adam") {
    optimizer.value.beta1 ||= optimizerDefaults.adam.kind.value.beta1;
    optimizer.value.beta2 ||= optimizerDefaults.adam.kind.value.beta2;
    optimizer.value.epsilon ||= optimizerDefaults.adam.kind.value.epsilon;
  }
  training.mode ||= defaultJobSpec.training.mode;
  training.shuffle ||= defaultJobSpec.training.shuffle;

  spec.workers ??= empty.workers!;
  const workers = spec.workers;
  workers.replicas ||= defaultJobSpec.workers.replicas;
  spec.parameterServers ??= empty.parameterServers!;
  const ps = spec.parameterServers;
  ps.placement ||= defaultJobSpec.parameterServers.placement;
  ps.shards ||= defaultShards(workers.replicas, ps.placement);
  ps.chunkBytes ||= defaultJobSpec.parameterServers.chunkBytes;
  ps.dataPlane ||= defaultJobSpec.parameterServers.dataPlane;
  ps.wireDtype ||= defaultJobSpec.parameterServers.wireDtype;
  workers.minWorkers ||= defaultMinWorkers(workers.replicas, ps.placement);
  workers.maxWorkers ||= defaultMaxWorkers(workers.replicas);
  workers.pauseTimeoutSeconds ||= defaultJobSpec.workers.pauseTimeoutSeconds;
  workers.stepDeadlineMs ||= defaultJobSpec.workers.stepDeadlineMs;
  workers.maxMissedDeadlines ||= defaultJobSpec.workers.maxMissedDeadlines;

  spec.checkpoints ??= empty.checkpoints!;
  validateJobSpec(spec);
  return spec as ResolvedJobSpec;
}
