/**
 * Single-process references for the exactness test, from the same initial parameters and
 * the same sample ledger as a fleet:
 * - perRankReference: each rank's slice gradient computed here, averaged in rank order
 *   and applied with the parameter server's own optimizer, and a model's buffers (its
 *   BatchNormalization statistics) taken from rank 0. The fleet must match it bit for
 *   bit: the distributed path (chunks, shards, wire, versions) may add no error.
 * - plainReference: the gradient of the whole global batch at once, applied with
 *   tf.js's own optimizer (an independent implementation). The fleet must match it to
 *   float tolerance: data-parallel SGD with N x b is single-process SGD with batch N*b.
 * - stockTfjsReference: no trainfleet code in the training at all: the user's model.json
 *   loaded by tf.loadLayersModel, compiled with tf.js's optimizer and the job's loss, and
 *   trained by model.trainOnBatch on each global batch of N*b samples in the ledger's order.
 *   What a user who never heard of trainfleet would get from the same model and data.
 */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import type { PlannedStep } from "@trainfleet/coordinator";
import { SampleCursor, sampleOrderOf } from "@trainfleet/coordinator";
import { averageInRankOrder, createOptimizer, modelWeightsSlice } from "@trainfleet/paramserver";
import type { JobSpec } from "@trainfleet/proto";
import { Loss } from "@trainfleet/proto";
import { dataShape, initialParameters, parameterLayout } from "@trainfleet/spec";
import type { Model, TrainingData } from "@trainfleet/worker";
import { buildModel, scaleGradient } from "@trainfleet/worker";

/** The same steps a coordinator hands out for this spec and world size (its sample order included). */
function* ledger(spec: JobSpec, worldSize: number, steps: number, trainSamples: number): Generator<PlannedStep> {
  const globalBatchSize = spec.workers!.replicas * spec.training!.batchSizePerWorker;
  const cursor = new SampleCursor(spec.training!.seed, trainSamples, globalBatchSize, undefined, sampleOrderOf(spec));
  for (let step = 0; step < steps; step++) yield cursor.next(worldSize);
}

/** The job's model and its initial parameters, as the shards start them (a model's weights, or seeded). */
async function setup(
  spec: JobSpec,
): Promise<{ records: number; parameterCount: number; trainableCount: number; params: Float32Array; model: Model }> {
  const data = dataShape(spec.dataset!);
  const layout = parameterLayout(spec.model!, data);
  const { parameterCount, trainableCount } = layout;
  const range = { begin: 0, end: parameterCount };
  const params = (await modelWeightsSlice(spec, layout, range)) ?? initialParameters(layout, spec.training!.seed, 0, parameterCount);
  return { records: data.trainRecords, parameterCount, trainableCount, params, model: await buildModel(spec.model!, data) };
}

/** Each rank's slice gradient, averaged in rank order and optimised; the buffers after the trainable elements become rank 0's. */
export async function perRankReference(spec: JobSpec, data: TrainingData, worldSize: number, steps: number): Promise<Float32Array> {
  const { records, parameterCount, trainableCount, params, model } = await setup(spec);
  const optimizer = createOptimizer(spec.training!.optimizer!, trainableCount);
  const gradients = Array.from({ length: worldSize }, () => new Float32Array(parameterCount));
  const average = new Float32Array(trainableCount);
  let t = 0;
  for (const planned of ledger(spec, worldSize, steps, records)) {
    for (const [rank, indices] of planned.sampleIndices.entries()) {
      const batch = await data.train.batch(indices);
      model.lossAndGradient(params, batch, gradients[rank]!);
      scaleGradient(gradients[rank]!.subarray(0, trainableCount), batch.count, worldSize, planned.globalBatchSize);
    }
    averageInRankOrder(gradients, 0, trainableCount, average);
    optimizer.apply(params, average, params, 0, trainableCount, ++t);
    optimizer.commit();
    params.set(gradients[0]!.subarray(trainableCount), trainableCount);
  }
  model.dispose();
  return params;
}

export async function plainReference(spec: JobSpec, data: TrainingData, worldSize: number, steps: number): Promise<Float32Array> {
  const { records, parameterCount, trainableCount, params, model } = await setup(spec);
  if (trainableCount !== parameterCount)
    throw new Error("plainReference trains models without buffers (BatchNormalization): use perRankReference");
  const weights = tf.variable(tf.tensor1d(params));
  const kind = spec.training!.optimizer!.kind;
  const optimizer =
    kind.case === "sgd"
      ? tf.train.momentum(kind.value.learningRate, kind.value.momentum)
      : kind.case === "adam"
        ? tf.train.adam(kind.value.learningRate, kind.value.beta1, kind.value.beta2, kind.value.epsilon)
        : undefined;
  if (optimizer === undefined) throw new Error("no optimizer in spec");
  const gradient = new Float32Array(parameterCount);
  for (const planned of ledger(spec, worldSize, steps, records)) {
    const globalBatch = planned.sampleIndices.flatMap((indices) => Array.from(indices));
    model.lossAndGradient(weights.dataSync() as Float32Array, await data.train.batch(globalBatch), gradient);
    tf.tidy(() => optimizer.applyGradients([{ name: weights.name, tensor: tf.tensor1d(gradient) }]));
  }
  const result = weights.dataSync() as Float32Array;
  weights.dispose();
  optimizer.dispose();
  model.dispose();
  return Float32Array.from(result);
}

/** tf.js's names for the spec's losses. */
const stockLosses: Record<number, string> = {
  [Loss.SPARSE_CATEGORICAL_CROSSENTROPY]: "sparseCategoricalCrossentropy",
  [Loss.CATEGORICAL_CROSSENTROPY]: "categoricalCrossentropy",
  [Loss.MEAN_SQUARED_ERROR]: "meanSquaredError",
  [Loss.BINARY_CROSSENTROPY]: "binaryCrossentropy",
};

/** A model.json by URL (tf.js's own http loader) or local path (read here, decoded by tf.js). */
async function loadStockModel(uri: string): Promise<tfl.LayersModel> {
  if (/^https?:\/\//.test(uri)) return tfl.loadLayersModel(uri);
  if (uri.includes("://")) throw new Error(`stockTfjsReference reads local paths and http(s) URLs, not ${uri}`);
  const modelJson = JSON.parse(await readFile(uri, "utf8")) as tf.io.ModelJSON;
  const artifacts = await tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
    const files = await Promise.all(manifest.flatMap((group) => group.paths.map((path) => readFile(join(dirname(uri), path)))));
    const data = tf.io.concatenateArrayBuffers(
      files.map((bytes) => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)),
    );
    return [manifest.flatMap((group) => group.weights), data];
  });
  return tfl.loadLayersModel(tf.io.fromMemory(artifacts));
}

type HostBatch = Awaited<ReturnType<TrainingData["train"]["batch"]>>;

/** The batch's labels as tf.js's loss expects them for the model's output. */
function stockTargets(loss: string, batch: HostBatch, outputUnits: number): tf.Tensor {
  if (batch.targets !== undefined) return tf.tensor2d(batch.targets, [batch.count, batch.targets.length / batch.count]);
  if (loss === "categoricalCrossentropy")
    return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(batch.labels, "int32"), outputUnits), "float32"));
  // Sparse cross-entropy takes [count, 1] class indices; binary cross-entropy a 0/1 label per output.
  return tf.tensor2d(Float32Array.from(batch.labels), [batch.count, 1]);
}

/**
 * Stock tf.js training of the job's Layers model (spec.model.layers): the flat trainable
 * weights after `steps` calls of model.trainOnBatch, each on the global batch of that step
 * in the coordinator's sample order. The model starts from its file's weights as tf.js
 * loads them (from trainfleet's seeded initialisation when the file has none).
 */
export async function stockTfjsReference(spec: JobSpec, data: TrainingData, worldSize: number, steps: number): Promise<Float32Array> {
  const layers = spec.model!.kind.case === "layers" ? spec.model!.kind.value : undefined;
  if (layers === undefined) throw new Error("stockTfjsReference trains a user's Layers model (spec.model.layers)");
  const records = dataShape(spec.dataset!).trainRecords;
  const model = await loadStockModel(layers.uri);
  if (layers.artifact?.hasWeights !== true) {
    const start = await setup(spec);
    start.model.dispose();
    const params = start.params;
    let offset = 0;
    for (const weight of model.trainableWeights) {
      const size = weight.shape.reduce((a: number, b) => a * (b ?? 1), 1);
      const values = tf.tensor(params.subarray(offset, (offset += size)), weight.shape as number[]);
      weight.write(values);
      values.dispose();
    }
  }
  // The loss the model was compiled with when saved (its trainingConfig), unless the spec names one.
  const loss = stockLosses[layers.loss] ?? (model.loss as string | undefined);
  if (typeof loss !== "string") throw new Error(`no loss for ${layers.uri}: neither spec.model.layers.loss nor a trainingConfig`);
  const kind = spec.training!.optimizer!.kind;
  const optimizer =
    kind.case === "sgd"
      ? tf.train.momentum(kind.value.learningRate, kind.value.momentum)
      : kind.case === "adam"
        ? tf.train.adam(kind.value.learningRate, kind.value.beta1, kind.value.beta2, kind.value.epsilon)
        : undefined;
  if (optimizer === undefined) throw new Error("no optimizer in spec");
  model.compile({ optimizer, loss });
  const inputShape = model.inputs[0]!.shape.slice(1) as number[];
  const outputUnits = model.outputs[0]!.shape.at(-1) as number;
  for (const planned of ledger(spec, worldSize, steps, records)) {
    const batch = await data.train.batch(planned.sampleIndices.flatMap((indices) => Array.from(indices)));
    const x = tf.tensor(batch.x, [batch.count, ...inputShape]);
    const y = stockTargets(loss, batch, outputUnits);
    await model.trainOnBatch(x, y);
    tf.dispose([x, y]);
  }
  const result = Float32Array.from(model.trainableWeights.flatMap((weight) => Array.from(weight.read().dataSync())));
  model.dispose();
  optimizer.dispose();
  return result;
}
