/**
 * The flags that describe a job, shared by `run` and `coordinator`. A JobSpec file (proto
 * JSON) may give the base; flags given on the command line override it; whatever is left
 * unset takes the defaults of resolveJobSpec. Those defaults, and the ones a flag falls back
 * to when it names a model or an optimizer, come from spec's table (defaultJobSpec,
 * modelDefaults, optimizerDefaults), and so does every "Default ..." in the help below.
 */
import { readFile } from "node:fs/promises";
import type { JsonValue } from "@bufbuild/protobuf";
import { clone, create, fromJson } from "@bufbuild/protobuf";
import type { JobSpec } from "@trainfleet/proto";
import {
  CheckpointSpecSchema,
  Code,
  DataPlane,
  DatasetSpecSchema,
  JobSpecSchema,
  Loss,
  ModelSpecSchema,
  OptimizerSpecSchema,
  ParameterServersSpecSchema,
  Placement,
  Shuffle,
  TrainfleetError,
  TrainingMode,
  TrainingSpecSchema,
  WireDtype,
  WorkersSpecSchema,
} from "@trainfleet/proto";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import { defaultJobSpec, modelDefaults, optimizerDefaults, resolveJobSpec } from "@trainfleet/spec";
import type { FlagTable, FlagValue } from "./flags.js";
import { UsageError } from "./flags.js";

/** The values of the enum flags and the proto enum values they stand for. */
const modes = { sync: TrainingMode.SYNC, async: TrainingMode.ASYNC };
const placements = { dedicated: Placement.DEDICATED, colocated: Placement.COLOCATED };
const wireDtypes = { float32: WireDtype.FLOAT32, bfloat16: WireDtype.BFLOAT16, float16: WireDtype.FLOAT16 };
const dataPlanes = { tcp: DataPlane.TCP, grpc: DataPlane.GRPC };
const shuffles = { global: Shuffle.GLOBAL, block: Shuffle.BLOCK, feistel: Shuffle.FEISTEL };
const losses = {
  "sparse-categorical-crossentropy": Loss.SPARSE_CATEGORICAL_CROSSENTROPY,
  "categorical-crossentropy": Loss.CATEGORICAL_CROSSENTROPY,
  "mean-squared-error": Loss.MEAN_SQUARED_ERROR,
  "binary-crossentropy": Loss.BINARY_CROSSENTROPY,
};

/** A --dataset value that names a file or a URL (a manifest) rather than a built-in dataset. */
function isManifest(value: string): boolean {
  return value.endsWith(".json") || value.includes("/");
}

/** The flag value that stands for an enum value (a default of spec's table). */
function choiceFor(choices: Record<string, number>, value: number): string {
  const choice = Object.entries(choices).find(([, number]) => number === value)?.[0];
  if (choice === undefined) throw new Error(`no flag value stands for ${value}`);
  return choice;
}

const defaults = defaultJobSpec;
const mlp = modelDefaults.mlp.kind.value;
const cnn = modelDefaults.cnn.kind.value;
const adam = optimizerDefaults.adam.kind.value;
const sgd = optimizerDefaults.sgd.kind.value;

export const jobFlags: FlagTable = {
  spec: {
    kind: "string",
    help: "A JobSpec in protobuf JSON (see proto/proto/trainfleet/v1/job.proto): a file, or the JSON object itself (starting with {, as the operator passes it); the flags below override it.",
    env: "TRAINFLEET_SPEC",
  },
  "job-id": { kind: "string", help: `Job name: a DNS label. Default ${defaults.jobId} (a sharded --dataset: its folder's name).` },
  model: { kind: "string", choices: Object.keys(modelDefaults), help: `Model architecture. Default ${defaults.model.kind.case}.` },
  hidden: { kind: "list", help: `MLP hidden layer widths, comma-separated. Default ${mlp.hiddenUnits.join(",")}.` },
  "conv-filters": {
    kind: "list",
    help: `CNN filters per conv layer (${cnn.kernelSize}x${cnn.kernelSize} conv + ReLU + 2x2 max-pool each). Default ${cnn.convFilters.join(",")}.`,
  },
  "dense-units": { kind: "integer", help: `CNN dense layer width before the output (0: none). Default ${cnn.denseUnits}.` },
  "model-json": {
    kind: "string",
    help: "Train your own tf.js Layers model instead of --model: its model.json (as model.save() or tensorflowjs_converter writes it), a local path or an http(s):// or s3:// URL; its weight files are read from beside it. With weights it is fine-tuned from them; without, seeded.",
  },
  "model-sha256": { kind: "string", help: "sha256 of --model-json's model.json; other bytes are refused." },
  loss: {
    kind: "string",
    choices: Object.keys(losses),
    help: "Loss of --model-json's model; without it, the loss the model was compiled with (its trainingConfig).",
  },
  "model-module": {
    kind: "string",
    help: "An ES module (local path) that workers load before --model-json's model: it may export registerLayers(tf) for custom layers and loss(tf, labels, predictions).",
  },
  dataset: {
    kind: "string",
    help: `The training data: a built-in dataset (fashion-mnist), or a sharded dataset's manifest (a dataset.json that \`trainfleet dataset convert\` writes: a path, or an http(s):// or s3:// URL). Default ${defaults.dataset.name}.`,
  },
  "eval-dataset": {
    kind: "string",
    help: "The evaluation manifest of a sharded --dataset; without it, evaluation reads the training manifest's records.",
  },
  "dataset-sha256": { kind: "string", help: "sha256 of --dataset's manifest; other bytes are refused." },
  workers: {
    kind: "integer",
    min: 1,
    help: `Number of workers (data-parallel ranks) the job starts with; the global batch is this times --batch-size, whatever the number of workers later. Default ${defaults.workers.replicas}.`,
  },
  "min-workers": {
    kind: "integer",
    min: 1,
    help: `The fewest workers the job trains with; below it the job pauses, and fails after --pause-timeout. Default ${defaults.workers.minWorkers} (colocated: --workers).`,
  },
  // spec's defaultMaxWorkers: workers.replicas.
  "max-workers": { kind: "integer", min: 1, help: "The most workers that train at once; more wait as standbys. Default --workers." },
  "pause-timeout": {
    kind: "integer",
    min: 1,
    help: `Seconds the job may stay paused below --min-workers before it fails. Default ${defaults.workers.pauseTimeoutSeconds}.`,
  },
  "step-deadline-ms": {
    kind: "integer",
    min: 100,
    help: `A step not complete this long after it could start charges a missed deadline to each worker that has not pushed it yet (and again each further period). Default ${defaults.workers.stepDeadlineMs}.`,
  },
  "max-missed-deadlines": {
    kind: "integer",
    min: 1,
    help: `Missed step deadlines in a row after which a worker is evicted as a straggler (it may register again). Default ${defaults.workers.maxMissedDeadlines}.`,
  },
  shards: { kind: "integer", min: 1, help: `Number of parameter-server shards. Default ${defaults.parameterServers.shards}.` },
  epochs: { kind: "integer", min: 1, help: `Passes over the training set. Default ${defaults.training.epochs}.` },
  "batch-size": {
    kind: "integer",
    min: 1,
    help: `Samples per worker per step at --workers workers; the global batch is --workers times this. Default ${defaults.training.batchSizePerWorker}.`,
  },
  "max-steps": { kind: "integer", help: `Stop after this many steps (0: run all epochs). Default ${defaults.training.maxSteps}.` },
  mode: {
    kind: "string",
    choices: Object.keys(modes),
    help: `sync: every step waits for every worker (exact: equals one process with the global batch). async: shards apply each worker's gradient as it arrives. Default ${choiceFor(modes, defaults.training.mode)}.`,
  },
  "max-staleness": {
    kind: "integer",
    min: 0,
    help: `Async mode: a shard refuses a gradient computed from a version more than this many behind its own (the worker computes it again); 0: no bound. Default ${defaults.training.maxStaleness}.`,
  },
  optimizer: {
    kind: "string",
    choices: Object.keys(optimizerDefaults),
    help: `Optimizer applied by the parameter server. Default ${defaults.training.optimizer.kind.case}.`,
  },
  lr: { kind: "number", help: `Learning rate. Default ${adam.learningRate} for adam, ${sgd.learningRate} for sgd.` },
  momentum: { kind: "number", help: `SGD momentum. Default ${sgd.momentum}.` },
  seed: { kind: "integer", help: `Seeds the initial parameters and the per-epoch sample order. Default ${defaults.training.seed}.` },
  shuffle: {
    kind: "string",
    choices: Object.keys(shuffles),
    help: `How each epoch orders the samples. global: a shuffle of the whole training set (every worker reads nearly all of a sharded dataset). block: the dataset's blocks (or --shuffle-window records) dealt to the workers, shuffled inside, so each of N workers reads about 1/N of it per epoch. feistel: a global shuffle computed in O(1) memory, for training sets too large for an in-memory one. Default ${choiceFor(shuffles, defaults.training.shuffle)}.`,
  },
  "shuffle-window": {
    kind: "integer",
    min: 0,
    help: `--shuffle block: records per window, the unit a worker reads (0: the sharded dataset's block size; a built-in dataset needs one). Default ${defaults.training.shuffleWindow}.`,
  },
  "eval-samples": {
    kind: "integer",
    help: `Test samples evaluated at the end (0: the whole evaluation set, 10000 for Fashion-MNIST). Default ${defaults.training.evalSamples}.`,
  },
  placement: {
    kind: "string",
    choices: Object.keys(placements),
    help: `Where the shards run: processes of their own, or one inside each worker (then --shards is the worker count). Default ${choiceFor(placements, defaults.parameterServers.placement)}.`,
  },
  "wire-dtype": {
    kind: "string",
    choices: Object.keys(wireDtypes),
    help: `Number format of gradients and parameters on the TCP data channel (shards keep float32). Default ${choiceFor(wireDtypes, defaults.parameterServers.wireDtype)}, the only exact one.`,
  },
  "data-plane": {
    kind: "string",
    choices: Object.keys(dataPlanes),
    help: `How gradients and parameters travel: a raw TCP channel per shard, or gRPC streams. Default ${choiceFor(dataPlanes, defaults.parameterServers.dataPlane)}.`,
  },
  "chunk-bytes": {
    kind: "integer",
    min: 4,
    help: `Size of the gradient and parameter chunks on the wire. Default ${defaults.parameterServers.chunkBytes}.`,
  },
  "checkpoint-every": {
    kind: "integer",
    help: `Checkpoint every this many steps (each shard writes its parameters and optimizer state, the coordinator a manifest); 0: only the just-in-time checkpoint when the coordinator gets SIGTERM. Default ${defaults.checkpoints.everySteps}.`,
  },
};

/** The job flags given, by name (--spec included): none when a command was started with no job flags. */
export function givenJobFlags(values: Record<string, FlagValue>): string[] {
  return Object.keys(jobFlags).filter((name) => values[name] !== undefined);
}

/**
 * The job the flags describe, resolved: the one place where `run` and `coordinator` turn
 * their job flags into a ResolvedJobSpec, which everything after them takes as it is.
 */
export async function jobSpecFromFlags(values: Record<string, FlagValue>): Promise<ResolvedJobSpec> {
  const base = typeof values.spec === "string" ? await readJobSpec(values.spec) : create(JobSpecSchema);
  // `trainfleet run` starts its coordinator with --spec (the spec it resolved) and no other
  // job flag: nothing is merged over it then, and resolveJobSpec only checks it, because a
  // file another process wrote is input like any other (resolving is idempotent, so a
  // well-formed one comes back unchanged).
  const overridden = givenJobFlags(values).some((name) => name !== "spec");
  return resolveJobSpec(overridden ? withJobFlags(base, values) : base);
}

/** `base` with the job flags given set over it; unresolved (resolveJobSpec fills the rest). */
export function withJobFlags(base: JobSpec, values: Record<string, FlagValue>): JobSpec {
  const spec = clone(JobSpecSchema, base);
  const number = (name: string) => values[name] as number | undefined;
  const list = (name: string) => values[name] as number[] | undefined;
  if (values["job-id"] !== undefined) spec.jobId = values["job-id"] as string;
  const model = (values.model as string | undefined) ?? (list("conv-filters") !== undefined ? "cnn" : undefined);
  const layers = values["model-json"] as string | undefined;
  if (layers !== undefined) {
    if (model !== undefined) throw new UsageError(`--model ${model} and --model-json ${layers} each name the model: give one`);
    spec.model = create(ModelSpecSchema, {
      kind: {
        case: "layers",
        value: {
          uri: layers,
          sha256: (values["model-sha256"] as string | undefined) ?? "",
          loss: values.loss === undefined ? Loss.UNSPECIFIED : losses[values.loss as keyof typeof losses],
          module: (values["model-module"] as string | undefined) ?? "",
        },
      },
    });
  } else if (values["model-sha256"] !== undefined || values.loss !== undefined || values["model-module"] !== undefined) {
    throw new UsageError("--model-sha256, --loss and --model-module go with --model-json");
  } else if (model === "mlp" || list("hidden") !== undefined) {
    spec.model = create(ModelSpecSchema, { kind: { case: "mlp", value: { hiddenUnits: list("hidden") ?? [...mlp.hiddenUnits] } } });
  } else if (model === "cnn") {
    spec.model = create(ModelSpecSchema, {
      kind: {
        case: "cnn",
        value: {
          convFilters: list("conv-filters") ?? [...cnn.convFilters],
          kernelSize: cnn.kernelSize,
          denseUnits: number("dense-units") ?? cnn.denseUnits,
        },
      },
    });
  }
  const dataset = values.dataset as string | undefined;
  if (dataset !== undefined) {
    spec.dataset = create(DatasetSpecSchema, isManifest(dataset) ? { manifest: dataset } : { name: dataset });
  }
  if (values["eval-dataset"] !== undefined || values["dataset-sha256"] !== undefined) {
    if (spec.dataset === undefined || spec.dataset.manifest === "")
      throw new UsageError("--eval-dataset and --dataset-sha256 go with a manifest given as --dataset");
    spec.dataset.evalManifest = (values["eval-dataset"] as string | undefined) ?? spec.dataset.evalManifest;
    spec.dataset.sha256 = (values["dataset-sha256"] as string | undefined) ?? spec.dataset.sha256;
  }
  spec.training ??= create(TrainingSpecSchema);
  const training = spec.training;
  training.epochs = number("epochs") ?? training.epochs;
  training.batchSizePerWorker = number("batch-size") ?? training.batchSizePerWorker;
  training.maxSteps = number("max-steps") ?? training.maxSteps;
  training.seed = number("seed") ?? training.seed;
  training.evalSamples = number("eval-samples") ?? training.evalSamples;
  if (values.mode !== undefined) training.mode = modes[values.mode as keyof typeof modes];
  training.maxStaleness = number("max-staleness") ?? training.maxStaleness;
  if (values.shuffle !== undefined) training.shuffle = shuffles[values.shuffle as keyof typeof shuffles];
  training.shuffleWindow = number("shuffle-window") ?? training.shuffleWindow;
  const optimizer = (values.optimizer as string | undefined) ?? (values.momentum !== undefined ? "sgd" : undefined);
  if (optimizer === "sgd") {
    training.optimizer = create(OptimizerSpecSchema, {
      kind: { case: "sgd", value: { learningRate: number("lr") ?? sgd.learningRate, momentum: number("momentum") ?? sgd.momentum } },
    });
  } else if (optimizer === "adam" || (values.lr !== undefined && training.optimizer === undefined)) {
    training.optimizer = create(OptimizerSpecSchema, {
      kind: { case: "adam", value: { learningRate: number("lr") ?? adam.learningRate } },
    });
  } else if (values.lr !== undefined && training.optimizer !== undefined && training.optimizer.kind.case !== undefined) {
    training.optimizer.kind.value.learningRate = number("lr")!;
  }
  spec.workers ??= create(WorkersSpecSchema);
  const workers = spec.workers;
  workers.replicas = number("workers") ?? workers.replicas;
  workers.minWorkers = number("min-workers") ?? workers.minWorkers;
  workers.maxWorkers = number("max-workers") ?? workers.maxWorkers;
  workers.pauseTimeoutSeconds = number("pause-timeout") ?? workers.pauseTimeoutSeconds;
  workers.stepDeadlineMs = number("step-deadline-ms") ?? workers.stepDeadlineMs;
  workers.maxMissedDeadlines = number("max-missed-deadlines") ?? workers.maxMissedDeadlines;
  spec.parameterServers ??= create(ParameterServersSpecSchema);
  const ps = spec.parameterServers;
  ps.shards = number("shards") ?? ps.shards;
  ps.chunkBytes = number("chunk-bytes") ?? ps.chunkBytes;
  if (values.placement !== undefined) ps.placement = placements[values.placement as keyof typeof placements];
  if (values["wire-dtype"] !== undefined) ps.wireDtype = wireDtypes[values["wire-dtype"] as keyof typeof wireDtypes];
  if (values["data-plane"] !== undefined) ps.dataPlane = dataPlanes[values["data-plane"] as keyof typeof dataPlanes];
  spec.checkpoints ??= create(CheckpointSpecSchema);
  spec.checkpoints.everySteps = number("checkpoint-every") ?? spec.checkpoints.everySteps;
  return spec;
}

/**
 * A JobSpec file another process wrote (a job folder's spec.json), resolved: checked here
 * like any input before this process trusts it.
 */
export async function loadJobSpec(path: string): Promise<ResolvedJobSpec> {
  return resolveJobSpec(await readJobSpec(path));
}

/** The JobSpec of --spec: inline JSON when it starts with `{`, else a file's. */
export async function readJobSpec(path: string): Promise<JobSpec> {
  const inline = path.trimStart().startsWith("{");
  const source = inline ? "(inline JSON)" : path;
  let json: JsonValue;
  try {
    json = JSON.parse(inline ? path : await readFile(path, "utf8")) as JsonValue;
  } catch (error) {
    throw new TrainfleetError(Code.INVALID_ARGUMENT, `--spec ${source}: cannot read it as JSON: ${String(error)}`, {
      field: "spec",
      cause: error,
    });
  }
  try {
    return fromJson(JobSpecSchema, json);
  } catch (error) {
    throw new TrainfleetError(
      Code.INVALID_ARGUMENT,
      `--spec ${source}: not a JobSpec: ${error instanceof Error ? error.message : String(error)}`,
      { field: "spec", cause: error },
    );
  }
}
