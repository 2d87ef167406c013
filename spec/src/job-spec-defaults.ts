/**
 * Every default of a JobSpec, in one table. resolveJobSpec fills unset fields from it, the
 * CLI's job flags fall back to it and print it in their help, and the TrainingJob CRD's
 * `default:`s are held to it (k8s/test/crd-defaults.test.ts). A default written anywhere
 * else is a second opinion that drifts.
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { JobSpecSchema, ModelSpecSchema, OptimizerSpecSchema } from "@trainfleet/proto";
import { DataPlane, Placement, Shuffle, TrainingMode, WireDtype } from "@trainfleet/proto";

/**
 * Each model with its layers, for a model chosen by name only (the CLI's --model).
 * resolveJobSpec puts the MLP into a spec without a model; a model a spec gives is taken as
 * it is (an MLP without hidden units is softmax regression; a CNN must say its layers).
 */
export const modelDefaults = deepFreeze({
  mlp: { kind: { case: "mlp", value: { hiddenUnits: [256] } } } satisfies MessageInitShape<typeof ModelSpecSchema>,
  cnn: { kind: { case: "cnn", value: { convFilters: [8, 16], kernelSize: 3, denseUnits: 0 } } } satisfies MessageInitShape<
    typeof ModelSpecSchema
  >,
});

/**
 * Each optimizer with its parameters, for an optimizer chosen by name only (the CLI's
 * --optimizer). resolveJobSpec puts adam into a spec without an optimizer, and fills only
 * adam's beta1, beta2 and epsilon into one a spec gives: a learning rate must be given, and
 * SGD's momentum 0 is plain SGD, not "unset".
 */
export const optimizerDefaults = deepFreeze({
  adam: { kind: { case: "adam", value: { learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } } } satisfies MessageInitShape<
    typeof OptimizerSpecSchema
  >,
  sgd: { kind: { case: "sgd", value: { learningRate: 0.05, momentum: 0.9 } } } satisfies MessageInitShape<typeof OptimizerSpecSchema>,
});

/**
 * The JobSpec of a job nothing was said about: each field here is what resolveJobSpec
 * fills into that field when it is unset (zero in proto3). The zeros listed are settings of
 * their own (no step limit, the whole test set): proto3 cannot tell them from unset, so
 * they are the defaults by necessity, listed so that every role prints the same.
 * Frozen: copy before changing (create() keeps the arrays it is given).
 */
export const defaultJobSpec = deepFreeze({
  jobId: "fashion-mnist",
  model: modelDefaults.mlp,
  dataset: { name: "fashion-mnist" },
  training: {
    epochs: 3,
    batchSizePerWorker: 64,
    // 0: run all epochs.
    maxSteps: 0,
    seed: 1,
    // 0: the whole test set.
    evalSamples: 0,
    optimizer: optimizerDefaults.adam,
    mode: TrainingMode.SYNC,
    // 0: no bound (async mode only).
    maxStaleness: 0,
    // Today's Fisher-Yates over the whole training set: every job before there was a choice ran on it.
    shuffle: Shuffle.GLOBAL,
    // 0: the sharded dataset's block size (block shuffle only).
    shuffleWindow: 0,
  },
  workers: {
    replicas: 2,
    // The global batch is fixed, so fewer workers train the same model, only slower: by
    // default the job goes on with any. Colocated placement: workers.replicas (see
    // defaultMinWorkers). workers.maxWorkers: workers.replicas (defaultMaxWorkers).
    minWorkers: 1,
    // How long a job waits below workers.minWorkers before it fails.
    pauseTimeoutSeconds: 300,
    stepDeadlineMs: 60_000,
    maxMissedDeadlines: 3,
  },
  parameterServers: {
    // Dedicated placement; colocated: one per worker (defaultShards).
    shards: 2,
    chunkBytes: 1024 * 1024,
    dataPlane: DataPlane.TCP,
    placement: Placement.DEDICATED,
    wireDtype: WireDtype.FLOAT32,
  },
  // Only the just-in-time checkpoint when the coordinator is told to stop.
  checkpoints: { everySteps: 0 },
} satisfies MessageInitShape<typeof JobSpecSchema>);

/**
 * jobId when unset: the built-in dataset's name, or for a sharded dataset the name of the
 * folder its manifest lies in (data/digits/dataset.json: "digits"), as a DNS label.
 */
export function defaultJobId(dataset: { name: string; manifest: string }): string {
  if (dataset.manifest === "") return dataset.name || defaultJobSpec.jobId;
  const folder =
    dataset.manifest
      .replace(/[?#].*$/, "")
      .split("/")
      .slice(-2, -1)[0] ?? "";
  const label = folder
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63)
    .replace(/-+$/, "");
  return label === "" ? "job" : label;
}

/**
 * workers.minWorkers when unset. Colocated shards live in worker processes, so there a
 * worker's loss is a shard's loss, and the membership cannot change.
 */
export function defaultMinWorkers(replicas: number, placement: Placement): number {
  return placement === Placement.COLOCATED ? replicas : defaultJobSpec.workers.minWorkers;
}

/** workers.maxWorkers when unset: every worker asked for trains, none waits as a standby. */
export function defaultMaxWorkers(replicas: number): number {
  return replicas;
}

/** parameterServers.shards when unset: colocated placement has one shard in each worker. */
export function defaultShards(replicas: number, placement: Placement): number {
  return placement === Placement.COLOCATED ? replicas : defaultJobSpec.parameterServers.shards;
}

/** Freezes `value` and everything in it, so that no role can change a default for the others. */
function deepFreeze<T extends object>(value: T): T {
  for (const child of Object.values(value)) if (typeof child === "object" && child !== null) deepFreeze(child as object);
  return Object.freeze(value);
}
