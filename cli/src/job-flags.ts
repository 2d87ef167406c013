/**
 * The flags that describe a job, shared by `run` and `coordinator`. A JobSpec file (proto
 * JSON) may give the base; flags given on the command line override it; whatever is left
 * unset takes the defaults of resolveJobSpec.
 */
import { readFile } from "node:fs/promises";
import { create, fromJson } from "@bufbuild/protobuf";
import type { JsonValue } from "@bufbuild/protobuf";
import { CheckpointSpecSchema, Code, DataPlane, JobSpecSchema, Placement, WireDtype, ModelSpecSchema, OptimizerSpecSchema, ParameterServersSpecSchema, TrainfleetError, TrainingMode, TrainingSpecSchema, WorkersSpecSchema } from "@trainfleet/proto";
import type { JobSpec } from "@trainfleet/proto";
import { resolveJobSpec } from "@trainfleet/spec";
import type { FlagTable, FlagValue } from "./flags.js";

export const jobFlags: FlagTable = {
  spec: {
    kind: "string",
    help: "A JobSpec in protobuf JSON (see proto/proto/trainfleet/v1/job.proto): a file, or the JSON object itself (starting with {, as the operator passes it); the flags below override it.",
    env: "TRAINFLEET_SPEC",
  },
  "job-id": { kind: "string", help: "Job name: a DNS label. Default fashion-mnist." },
  model: { kind: "string", choices: ["mlp", "cnn"], help: "Model architecture. Default mlp." },
  hidden: { kind: "list", help: "MLP hidden layer widths, comma-separated. Default 256." },
  "conv-filters": { kind: "list", help: "CNN filters per conv layer (3x3 conv + ReLU + 2x2 max-pool each). Default 8,16." },
  "dense-units": { kind: "integer", help: "CNN dense layer width before the output (0: none). Default 0." },
  workers: { kind: "integer", min: 1, help: "Number of workers (data-parallel ranks) the job starts with; the global batch is this times --batch-size, whatever the number of workers later. Default 2." },
  "min-workers": { kind: "integer", min: 1, help: "The fewest workers the job trains with; below it the job pauses, and fails after --pause-timeout. Default 1 (colocated: --workers)." },
  "max-workers": { kind: "integer", min: 1, help: "The most workers that train at once; more wait as standbys. Default --workers." },
  "pause-timeout": { kind: "integer", min: 1, help: "Seconds the job may stay paused below --min-workers before it fails. Default 300." },
  "step-deadline-ms": { kind: "integer", min: 100, help: "A step not complete this long after it could start charges a missed deadline to each worker that has not pushed it yet (and again each further period). Default 60000." },
  "max-missed-deadlines": { kind: "integer", min: 1, help: "Missed step deadlines in a row after which a worker is evicted as a straggler (it may register again). Default 3." },
  shards: { kind: "integer", min: 1, help: "Number of parameter-server shards. Default 2." },
  epochs: { kind: "integer", min: 1, help: "Passes over the training set. Default 3." },
  "batch-size": { kind: "integer", min: 1, help: "Samples per worker per step at --workers workers; the global batch is --workers times this. Default 64." },
  "max-steps": { kind: "integer", help: "Stop after this many steps (0: run all epochs). Default 0." },
  mode: { kind: "string", choices: ["sync", "async"], help: "sync: every step waits for every worker (exact: equals one process with the global batch). async: shards apply each worker's gradient as it arrives. Default sync." },
  "max-staleness": { kind: "integer", min: 0, help: "Async mode: a shard refuses a gradient computed from a version more than this many behind its own (the worker computes it again); 0: no bound. Default 0." },
  optimizer: { kind: "string", choices: ["adam", "sgd"], help: "Optimizer applied by the parameter server. Default adam." },
  lr: { kind: "number", help: "Learning rate. Default 0.001 for adam, 0.05 for sgd." },
  momentum: { kind: "number", help: "SGD momentum. Default 0.9." },
  seed: { kind: "integer", help: "Seeds the initial parameters and the per-epoch sample order. Default 1." },
  "eval-samples": { kind: "integer", help: "Test samples evaluated at the end (0: all 10000). Default 0." },
  placement: { kind: "string", choices: ["dedicated", "colocated"], help: "Where the shards run: processes of their own, or one inside each worker (then --shards is the worker count). Default dedicated." },
  "wire-dtype": { kind: "string", choices: ["float32", "bfloat16", "float16"], help: "Number format of gradients and parameters on the TCP data channel (shards keep float32). Default float32, the only exact one." },
  "data-plane": { kind: "string", choices: ["tcp", "grpc"], help: "How gradients and parameters travel: a raw TCP channel per shard, or gRPC streams. Default tcp." },
  "chunk-bytes": { kind: "integer", min: 4, help: "Size of the gradient and parameter chunks on the wire. Default 1048576." },
  "checkpoint-every": {
    kind: "integer",
    help: "Checkpoint every this many steps (each shard writes its parameters and optimizer state, the coordinator a manifest); 0: only the just-in-time checkpoint when the coordinator gets SIGTERM. Default 0.",
  },
};

export async function jobSpecFromFlags(values: Record<string, FlagValue>): Promise<JobSpec> {
  const spec = typeof values.spec === "string" ? await readJobSpec(values.spec) : create(JobSpecSchema);
  const number = (name: string) => values[name] as number | undefined;
  const list = (name: string) => values[name] as number[] | undefined;
  if (values["job-id"] !== undefined) spec.jobId = values["job-id"] as string;
  const model = (values.model as string | undefined) ?? (list("conv-filters") !== undefined ? "cnn" : undefined);
  if (model === "mlp" || list("hidden") !== undefined) {
    spec.model = create(ModelSpecSchema, { kind: { case: "mlp", value: { hiddenUnits: list("hidden") ?? [256] } } });
  } else if (model === "cnn") {
    spec.model = create(ModelSpecSchema, {
      kind: { case: "cnn", value: { convFilters: list("conv-filters") ?? [8, 16], kernelSize: 3, denseUnits: number("dense-units") ?? 0 } },
    });
  }
  spec.training ??= create(TrainingSpecSchema);
  const training = spec.training!;
  training.epochs = number("epochs") ?? training.epochs;
  training.batchSizePerWorker = number("batch-size") ?? training.batchSizePerWorker;
  training.maxSteps = number("max-steps") ?? training.maxSteps;
  training.seed = number("seed") ?? training.seed;
  training.evalSamples = number("eval-samples") ?? training.evalSamples;
  if (values.mode !== undefined) training.mode = values.mode === "async" ? TrainingMode.ASYNC : TrainingMode.SYNC;
  training.maxStaleness = number("max-staleness") ?? training.maxStaleness;
  const optimizer = (values.optimizer as string | undefined) ?? (values.momentum !== undefined ? "sgd" : undefined);
  if (optimizer === "sgd") {
    training.optimizer = create(OptimizerSpecSchema, {
      kind: { case: "sgd", value: { learningRate: number("lr") ?? 0.05, momentum: number("momentum") ?? 0.9 } },
    });
  } else if (optimizer === "adam" || (values.lr !== undefined && training.optimizer === undefined)) {
    training.optimizer = create(OptimizerSpecSchema, {
      kind: { case: "adam", value: { learningRate: number("lr") ?? 0.001 } },
    });
  } else if (values.lr !== undefined && training.optimizer !== undefined && training.optimizer.kind.case !== undefined) {
    training.optimizer.kind.value.learningRate = number("lr")!;
  }
  spec.workers ??= create(WorkersSpecSchema);
  spec.workers!.replicas = number("workers") ?? spec.workers!.replicas;
  spec.workers!.minWorkers = number("min-workers") ?? spec.workers!.minWorkers;
  spec.workers!.maxWorkers = number("max-workers") ?? spec.workers!.maxWorkers;
  spec.workers!.pauseTimeoutSeconds = number("pause-timeout") ?? spec.workers!.pauseTimeoutSeconds;
  spec.workers!.stepDeadlineMs = number("step-deadline-ms") ?? spec.workers!.stepDeadlineMs;
  spec.workers!.maxMissedDeadlines = number("max-missed-deadlines") ?? spec.workers!.maxMissedDeadlines;
  spec.parameterServers ??= create(ParameterServersSpecSchema);
  spec.parameterServers!.shards = number("shards") ?? spec.parameterServers!.shards;
  spec.parameterServers!.chunkBytes = number("chunk-bytes") ?? spec.parameterServers!.chunkBytes;
  if (values.placement !== undefined) spec.parameterServers!.placement = values.placement === "colocated" ? Placement.COLOCATED : Placement.DEDICATED;
  const wire = { float32: WireDtype.FLOAT32, bfloat16: WireDtype.BFLOAT16, float16: WireDtype.FLOAT16 }[values["wire-dtype"] as string];
  if (wire !== undefined) spec.parameterServers!.wireDtype = wire;
  if (values["data-plane"] !== undefined) spec.parameterServers!.dataPlane = values["data-plane"] === "grpc" ? DataPlane.GRPC : DataPlane.TCP;
  spec.checkpoints ??= create(CheckpointSpecSchema);
  spec.checkpoints!.everySteps = number("checkpoint-every") ?? spec.checkpoints!.everySteps;
  return resolveJobSpec(spec);
}

/** The JobSpec of --spec: inline JSON when it starts with `{`, else a file's. */
export async function readJobSpec(path: string): Promise<JobSpec> {
  const inline = path.trimStart().startsWith("{");
  const source = inline ? "(inline JSON)" : path;
  let json: JsonValue;
  try {
    json = JSON.parse(inline ? path : await readFile(path, "utf8")) as JsonValue;
  } catch (error) {
    throw new TrainfleetError(Code.INVALID_ARGUMENT, `--spec ${source}: cannot read it as JSON: ${String(error)}`, { field: "spec", cause: error });
  }
  try {
    return fromJson(JobSpecSchema, json);
  } catch (error) {
    throw new TrainfleetError(Code.INVALID_ARGUMENT, `--spec ${source}: not a JobSpec: ${error instanceof Error ? error.message : String(error)}`, { field: "spec", cause: error });
  }
}
