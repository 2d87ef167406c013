/**
 * Single-process references for the exactness test, from the same initial parameters and
 * the same sample ledger as a fleet:
 * - perRankReference: each rank's slice gradient computed here, averaged in rank order
 *   and applied with the parameter server's own optimizer. The fleet must match it bit for
 *   bit: the distributed path (chunks, shards, wire, versions) may add no error.
 * - plainReference: the gradient of the whole global batch at once, applied with
 *   tf.js's own optimizer (an independent implementation). The fleet must match it to
 *   float tolerance: data-parallel SGD with N x b is single-process SGD with batch N*b.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { PlannedStep } from "@trainfleet/coordinator";
import { SampleCursor } from "@trainfleet/coordinator";
import { averageInRankOrder, createOptimizer, modelWeightsSlice } from "@trainfleet/paramserver";
import type { JobSpec } from "@trainfleet/proto";
import { dataShape, initialParameters, parameterLayout } from "@trainfleet/spec";
import type { Model, TrainingData } from "@trainfleet/worker";
import { buildModel, scaleGradient } from "@trainfleet/worker";

/** The same steps a coordinator hands out for this spec and world size. */
function* ledger(spec: JobSpec, worldSize: number, steps: number, trainSamples: number): Generator<PlannedStep> {
  const cursor = new SampleCursor(spec.training!.seed, trainSamples, spec.workers!.replicas * spec.training!.batchSizePerWorker);
  for (let step = 0; step < steps; step++) yield cursor.next(worldSize);
}

/** The job's model and its initial parameters, as the shards start them (a model's weights, or seeded). */
async function setup(spec: JobSpec): Promise<{ records: number; parameterCount: number; params: Float32Array; model: Model }> {
  const data = dataShape(spec.dataset!);
  const layout = parameterLayout(spec.model!, data);
  const range = { begin: 0, end: layout.parameterCount };
  const params = (await modelWeightsSlice(spec, layout, range)) ?? initialParameters(layout, spec.training!.seed, 0, layout.parameterCount);
  return { records: data.trainRecords, parameterCount: layout.parameterCount, params, model: await buildModel(spec.model!, data) };
}

export async function perRankReference(spec: JobSpec, data: TrainingData, worldSize: number, steps: number): Promise<Float32Array> {
  const { records, parameterCount, params, model } = await setup(spec);
  const optimizer = createOptimizer(spec.training!.optimizer!, parameterCount);
  const gradients = Array.from({ length: worldSize }, () => new Float32Array(parameterCount));
  const average = new Float32Array(parameterCount);
  let t = 0;
  for (const planned of ledger(spec, worldSize, steps, records)) {
    for (const [rank, indices] of planned.sampleIndices.entries()) {
      const batch = await data.train.batch(indices);
      model.lossAndGradient(params, batch, gradients[rank]!);
      scaleGradient(gradients[rank]!, batch.count, worldSize, planned.globalBatchSize);
    }
    averageInRankOrder(gradients, 0, parameterCount, average);
    optimizer.apply(params, average, params, 0, parameterCount, ++t);
    optimizer.commit();
  }
  model.dispose();
  return params;
}

export async function plainReference(spec: JobSpec, data: TrainingData, worldSize: number, steps: number): Promise<Float32Array> {
  const { records, parameterCount, params, model } = await setup(spec);
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
