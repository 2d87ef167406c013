/**
 * What a JobSpec may say, checked field by field on a spec whose defaults are filled in
 * (resolveJobSpec calls it; nothing else need). Errors name the field in proto JSON
 * spelling, as a user writes it, and say what would be accepted: a user fixes a spec from
 * the message alone.
 */

import type { DatasetSpec, JobSpec, LayersModelSpec } from "@trainfleet/proto";
import { DataPlane, invalidField, Loss, maxChunkBytes, Placement, Shuffle, TrainingMode, WireDtype } from "@trainfleet/proto";
import type { DataShape } from "./data-shape.js";
import { dataShape } from "./data-shape.js";
import { parameterLayout } from "./parameter-layout.js";

const jobIdPattern = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const sha256Pattern = /^[0-9a-f]{64}$/;
const urlPattern = /^[a-z][a-z0-9+.-]*:\/\//i;

function check(ok: boolean, field: string, problem: string): void {
  if (!ok) throw invalidField(`spec.${field}`, problem);
}

function inRange(value: number, low: number, high: number): boolean {
  return Number.isFinite(value) && value >= low && value <= high;
}

/** Validates a resolved spec; throws INVALID_ARGUMENT naming the first bad field. */
export function validateJobSpec(spec: JobSpec): void {
  check(
    jobIdPattern.test(spec.jobId),
    "jobId",
    `"${spec.jobId}" must be a DNS label: lower-case letters, digits and '-', 1-63 characters, starting and ending with a letter or digit`,
  );
  const model = spec.model!.kind;
  if (model.case === "mlp") {
    model.value.hiddenUnits.forEach((units, i) =>
      check(inRange(units, 1, 65536), `model.mlp.hiddenUnits[${i}]`, `${units} must be between 1 and 65536`),
    );
  } else if (model.case === "cnn") {
    const cnn = model.value;
    check(
      cnn.convFilters.length >= 1 && cnn.convFilters.length <= 4,
      "model.cnn.convFilters",
      `give 1 to 4 conv layers, got ${cnn.convFilters.length}`,
    );
    cnn.convFilters.forEach((filters, i) =>
      check(inRange(filters, 1, 1024), `model.cnn.convFilters[${i}]`, `${filters} must be between 1 and 1024`),
    );
    check(cnn.kernelSize % 2 === 1 && inRange(cnn.kernelSize, 1, 7), "model.cnn.kernelSize", `${cnn.kernelSize} must be odd, 1 to 7`);
    check(inRange(cnn.denseUnits, 0, 65536), "model.cnn.denseUnits", `${cnn.denseUnits} must be between 0 and 65536`);
  } else if (model.case === "layers") {
    validateLayersModel(model.value);
  }
  const data = validateDataset(spec.dataset!);
  validateDecoder(spec);
  if (model.case === "cnn" && data !== undefined) {
    const [height = 1, width = 1] = data.featureShape;
    const shrink = 2 ** model.value.convFilters.length;
    check(
      data.featureShape.length >= 2 && data.featureShape.length <= 3 && height >= shrink && width >= shrink,
      "model.cnn.convFilters",
      `${model.value.convFilters.length} conv layers halve an image ${model.value.convFilters.length} times; the dataset's samples are ${data.featureShape.join("x")}: give an image dataset at least ${shrink}x${shrink}, or use the mlp or your own model`,
    );
  }
  const training = spec.training!;
  check(inRange(training.epochs, 1, 10_000), "training.epochs", `${training.epochs} must be between 1 and 10000`);
  check(
    inRange(training.batchSizePerWorker, 1, 10_000),
    "training.batchSizePerWorker",
    `${training.batchSizePerWorker} must be between 1 and 10000`,
  );
  check(
    inRange(training.evalSamples, 0, 10_000_000),
    "training.evalSamples",
    `${training.evalSamples} must be 0 (whole test set) or a positive count`,
  );
  const optimizer = training.optimizer!.kind;
  if (optimizer.case === "sgd") {
    check(
      optimizer.value.learningRate > 0 && inRange(optimizer.value.learningRate, 0, 10),
      "training.optimizer.sgd.learningRate",
      `${optimizer.value.learningRate} must be in (0, 10]`,
    );
    check(
      inRange(optimizer.value.momentum, 0, 0.999999),
      "training.optimizer.sgd.momentum",
      `${optimizer.value.momentum} must be in [0, 1)`,
    );
  } else if (optimizer.case === "adam") {
    const adam = optimizer.value;
    check(
      adam.learningRate > 0 && inRange(adam.learningRate, 0, 10),
      "training.optimizer.adam.learningRate",
      `${adam.learningRate} must be in (0, 10]`,
    );
    check(inRange(adam.beta1, 0, 0.999999), "training.optimizer.adam.beta1", `${adam.beta1} must be in [0, 1)`);
    check(inRange(adam.beta2, 0, 0.999999999), "training.optimizer.adam.beta2", `${adam.beta2} must be in [0, 1)`);
    check(adam.epsilon > 0 && inRange(adam.epsilon, 0, 1), "training.optimizer.adam.epsilon", `${adam.epsilon} must be in (0, 1]`);
  }
  const workers = spec.workers!;
  check(inRange(workers.replicas, 1, 1024), "workers.replicas", `${workers.replicas} must be between 1 and 1024`);
  check(
    inRange(workers.minWorkers, 1, workers.replicas),
    "workers.minWorkers",
    `${workers.minWorkers} must be between 1 and workers.replicas (${workers.replicas})`,
  );
  check(
    inRange(workers.maxWorkers, workers.replicas, 1024),
    "workers.maxWorkers",
    `${workers.maxWorkers} must be between workers.replicas (${workers.replicas}) and 1024`,
  );
  check(
    inRange(workers.pauseTimeoutSeconds, 1, 604_800),
    "workers.pauseTimeoutSeconds",
    `${workers.pauseTimeoutSeconds} must be between 1 and 604800 (a week)`,
  );
  check(
    inRange(workers.stepDeadlineMs, 100, 86_400_000),
    "workers.stepDeadlineMs",
    `${workers.stepDeadlineMs} must be between 100 and 86400000 (a day)`,
  );
  check(
    inRange(workers.maxMissedDeadlines, 1, 1000),
    "workers.maxMissedDeadlines",
    `${workers.maxMissedDeadlines} must be between 1 and 1000`,
  );
  const ps = spec.parameterServers!;
  check(inRange(ps.shards, 1, 256), "parameterServers.shards", `${ps.shards} must be between 1 and 256`);
  check(
    ps.placement === Placement.DEDICATED || ps.placement === Placement.COLOCATED,
    "parameterServers.placement",
    `${ps.placement} must be PLACEMENT_DEDICATED or PLACEMENT_COLOCATED`,
  );
  if (ps.placement === Placement.COLOCATED) {
    check(
      ps.shards === spec.workers!.replicas,
      "parameterServers.shards",
      `${ps.shards} shards with colocated placement: it has one shard per worker, so leave it unset or make it ${spec.workers!.replicas}`,
    );
    check(
      ps.dataPlane === DataPlane.TCP,
      "parameterServers.dataPlane",
      "colocated placement reaches the other workers' shards over the TCP data channel: use DATA_PLANE_TCP",
    );
    const fixed = workers.minWorkers === workers.replicas && workers.maxWorkers === workers.replicas;
    check(
      fixed,
      "workers.minWorkers",
      `colocated placement is not elastic (each worker process holds a shard): leave workers.minWorkers and workers.maxWorkers unset or make both ${workers.replicas}, or use dedicated placement`,
    );
  }
  check(
    [WireDtype.FLOAT32, WireDtype.BFLOAT16, WireDtype.FLOAT16].includes(ps.wireDtype),
    "parameterServers.wireDtype",
    `${ps.wireDtype} must be WIRE_DTYPE_FLOAT32, WIRE_DTYPE_BFLOAT16 or WIRE_DTYPE_FLOAT16`,
  );
  check(
    ps.wireDtype === WireDtype.FLOAT32 || ps.dataPlane === DataPlane.TCP,
    "parameterServers.wireDtype",
    "16-bit values travel on the TCP data channel only: use DATA_PLANE_TCP",
  );
  check(
    ps.dataPlane === DataPlane.TCP || ps.dataPlane === DataPlane.GRPC,
    "parameterServers.dataPlane",
    `${ps.dataPlane} must be DATA_PLANE_TCP or DATA_PLANE_GRPC`,
  );
  check(
    ps.chunkBytes % 4 === 0 && inRange(ps.chunkBytes, 4, maxChunkBytes),
    "parameterServers.chunkBytes",
    `${ps.chunkBytes} must be a multiple of 4 between 4 and ${maxChunkBytes}`,
  );
  check(
    training.mode === TrainingMode.SYNC || training.mode === TrainingMode.ASYNC,
    "training.mode",
    `${training.mode} must be TRAINING_MODE_SYNC or TRAINING_MODE_ASYNC`,
  );
  check(
    inRange(training.maxStaleness, 0, 10_000),
    "training.maxStaleness",
    `${training.maxStaleness} must be between 0 (no bound) and 10000`,
  );
  if (training.mode === TrainingMode.SYNC) {
    check(
      training.maxStaleness === 0,
      "training.maxStaleness",
      "applies to async mode only: leave it unset, or set training.mode to TRAINING_MODE_ASYNC",
    );
  } else {
    check(ps.placement === Placement.DEDICATED, "parameterServers.placement", "async mode needs dedicated shards: use PLACEMENT_DEDICATED");
    check(
      (spec.checkpoints?.everySteps ?? 0) === 0,
      "checkpoints.everySteps",
      "async mode takes no periodic checkpoints yet (shard versions count gradients, not steps): leave it 0, or use sync mode",
    );
  }
  validateShuffle(spec);
  const everySteps = spec.checkpoints?.everySteps ?? 0;
  check(
    Number.isSafeInteger(everySteps) && inRange(everySteps, 0, 4_294_967_295),
    "checkpoints.everySteps",
    `${everySteps} must be 0 (a checkpoint only when the job is stopped) or a step count up to 4294967295`,
  );
  // A user's model is counted once its artifact has been read (the coordinator refuses to start before).
  if (data === undefined || (model.case === "layers" && (model.value.artifact?.digest ?? "") === "")) return;
  const parameters = parameterLayout(spec.model!, data).parameterCount;
  // Before any process allocates: 4 bytes a parameter, and the optimizer's state and every rank's contribution besides.
  check(
    parameters <= maxParameterCount,
    model.case === "mlp" ? "model.mlp.hiddenUnits" : "model",
    `asks for ${parameters} parameters; at most ${maxParameterCount} are allowed (the maximum trainfleet takes): use smaller layers`,
  );
  check(
    ps.shards <= parameters,
    "parameterServers.shards",
    `${ps.shards} shards for ${parameters} parameters: give at most one shard per parameter`,
  );
}

/** The most parameters a model may have: 4 GB of float32 values, and as much again per rank and optimizer slot on the shards. */
export const maxParameterCount = 1_000_000_000;

/** The most records a block-shuffle window may hold: the coordinator shuffles a window in memory. */
const maxShuffleWindow = 16_777_216;

/** training.shuffle and its window: block shuffle needs a window, given or the sharded dataset's block size. */
function validateShuffle(spec: JobSpec): void {
  const training = spec.training!;
  const dataset = spec.dataset!;
  check(
    training.shuffle === Shuffle.GLOBAL || training.shuffle === Shuffle.BLOCK || training.shuffle === Shuffle.FEISTEL,
    "training.shuffle",
    `${training.shuffle} must be SHUFFLE_GLOBAL, SHUFFLE_BLOCK or SHUFFLE_FEISTEL`,
  );
  check(
    Number.isInteger(training.shuffleWindow) && inRange(training.shuffleWindow, 0, maxShuffleWindow),
    "training.shuffleWindow",
    `${training.shuffleWindow} must be between 0 (the dataset's block size) and ${maxShuffleWindow} records`,
  );
  if (training.shuffle !== Shuffle.BLOCK) {
    check(
      training.shuffleWindow === 0,
      "training.shuffleWindow",
      "applies to block shuffle only: leave it unset, or set training.shuffle to SHUFFLE_BLOCK",
    );
    return;
  }
  if (training.shuffleWindow > 0) return;
  check(
    dataset.manifest !== "",
    "training.shuffleWindow",
    `block shuffle deals windows of records to the workers, and the built-in dataset ${dataset.name} has no blocks to make them of: give training.shuffleWindow (records per window, e.g. 1024), or a sharded dataset`,
  );
  // A manifest not read yet is checked again once its facts are pinned.
  const facts = dataset.facts;
  if (facts === undefined || facts.digest === "") return;
  check(
    facts.recordsPerBlock >= 1,
    "training.shuffleWindow",
    `the facts pinned for ${dataset.manifest} give no block size (dataset.facts.recordsPerBlock is 0): give training.shuffleWindow, or resolve the job again`,
  );
}

function validateLayersModel(layers: LayersModelSpec): void {
  check(layers.uri !== "", "model.layers.uri", "give the model.json: a local path, or an http(s):// or s3:// URL");
  check(
    layers.sha256 === "" || sha256Pattern.test(layers.sha256),
    "model.layers.sha256",
    "must be 64 lower-case hex digits (sha256sum's output)",
  );
  check(Loss[layers.loss] !== undefined, "model.layers.loss", `${layers.loss} is not a Loss: leave it unset (the model's own) or name one`);
  check(
    !urlPattern.test(layers.module) || layers.module.startsWith("file://"),
    "model.layers.module",
    `"${layers.module}" is a URL: a module runs code in the workers, so it comes from a local path (in Kubernetes, a path inside the job's image), never from the network`,
  );
  const artifact = layers.artifact;
  if (artifact === undefined || artifact.digest === "") return;
  check(artifact.tensors.length > 0, "model.layers.artifact.tensors", "the model has no trainable weights: nothing to train");
  artifact.tensors.forEach((tensor, i) =>
    check(
      tensor.name !== "" && tensor.shape.every((d) => d >= 1),
      `model.layers.artifact.tensors[${i}]`,
      `"${tensor.name}" [${tensor.shape.join(", ")}] needs a name and positive dimensions`,
    ),
  );
}

/** A manifest whose records the job's module decodes (pinned as dataset.facts.decodedByModule) needs that module. */
function validateDecoder(spec: JobSpec): void {
  if (spec.dataset!.facts?.decodedByModule !== true) return;
  const model = spec.model!.kind;
  const hasModule = model.case === "layers" && model.value.module !== "";
  check(
    hasModule,
    "model.layers.module",
    `the dataset ${spec.dataset!.manifest} says features.decoder "module" (pinned as spec.dataset.facts.decodedByModule): its records are decoded by the job's module, and the job has none; ` +
      (model.case === "layers"
        ? "give spec.model.layers.module (--model-module) exporting decodeRecords({ records, columns })"
        : "give your own model (spec.model.layers, --model-json) with a module (--model-module) exporting decodeRecords({ records, columns })") +
      ", or convert the data without a decoder",
  );
}

/** Checks the dataset fields; its shape when known (a built-in dataset, or a read manifest). */
function validateDataset(dataset: DatasetSpec): DataShape | undefined {
  if (dataset.manifest === "") {
    check(
      dataset.evalManifest === "",
      "dataset.evalManifest",
      "goes with spec.dataset.manifest: give both, or neither for a built-in dataset",
    );
    check(dataset.sha256 === "", "dataset.sha256", "is the training manifest's digest: give spec.dataset.manifest too");
    return dataShape(dataset);
  }
  check(
    dataset.name === "",
    "dataset.name",
    `give either a built-in dataset's name or a manifest, not both ("${dataset.name}" and ${dataset.manifest})`,
  );
  check(
    dataset.sha256 === "" || sha256Pattern.test(dataset.sha256),
    "dataset.sha256",
    "must be 64 lower-case hex digits (sha256sum's output)",
  );
  const facts = dataset.facts;
  if (facts === undefined || facts.digest === "") return undefined;
  check(facts.trainRecords >= 1, "dataset.facts.trainRecords", `the manifest ${dataset.manifest} lists no records`);
  check(facts.evalRecords >= 1, "dataset.facts.evalRecords", "the evaluation manifest lists no records");
  check(
    facts.featureShape.length >= 1 && facts.featureShape.every((d) => d >= 1),
    "dataset.facts.featureShape",
    `[${facts.featureShape.join(", ")}] needs one or more positive dimensions`,
  );
  check(
    facts.classes >= 2 ? facts.labelSize === 0 : facts.classes === 0 && facts.labelSize >= 1,
    "dataset.facts",
    `a label is either a class of 2 or more (classes ${facts.classes}) or regression values (labelSize ${facts.labelSize}), not both`,
  );
  return dataShape(dataset);
}
