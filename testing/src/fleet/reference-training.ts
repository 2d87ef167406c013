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
import { averageInRankOrder, createOptimizer } from "@trainfleet/paramserver";
import type { JobSpec } from "@trainfleet/proto";
import { datasetShape, initialParameters, parameterLayout } from "@trainfleet/spec";
import type { ImageDataset } from "@trainfleet/worker";
import { createModel, makeBatch, scaleGradient } from "@trainfleet/worker";

/** The same steps a coordinator hands out for this spec and world size. */
function* ledger(spec: JobSpec, worldSize: number, steps: number, trainSamples: number): Generator<PlannedStep> {
  const cursor = new SampleCursor(spec.training!.seed, trainSamples, spec.workers!.replicas * spec.training!.batchSizePerWorker);
  for (let step = 0; step < steps; step++) yield cursor.next(worldSize);
}

function setup(spec: JobSpec) {
  const input = datasetShape(spec.dataset!.name);
  const layout = parameterLayout(spec.model!, input);
  const params = initialParameters(layout, spec.training!.seed, 0, layout.parameterCount);
  return { input, layout, params, model: createModel(layout) };
}

export function perRankReference(spec: JobSpec, dataset: ImageDataset, worldSize: number, steps: number): Float32Array {
  const { input, layout, params, model } = setup(spec);
  const optimizer = createOptimizer(spec.training!.optimizer, layout.parameterCount);
  const gradients = Array.from({ length: worldSize }, () => new Float32Array(layout.parameterCount));
  const average = new Float32Array(layout.parameterCount);
  let t = 0;
  for (const planned of ledger(spec, worldSize, steps, input.trainSamples)) {
    planned.sampleIndices.forEach((indices, rank) => {
      const batch = makeBatch(dataset.train, indices);
      model.lossAndGradient(params, batch, gradients[rank]!);
      scaleGradient(gradients[rank]!, batch.count, worldSize, planned.globalBatchSize);
    });
    averageInRankOrder(gradients, 0, layout.parameterCount, average);
    optimizer.apply(params, average, params, 0, layout.parameterCount, ++t);
    optimizer.commit();
  }
  return params;
}

export function plainReference(spec: JobSpec, dataset: ImageDataset, worldSize: number, steps: number): Float32Array {
  const { input, layout, params, model } = setup(spec);
  const weights = tf.variable(tf.tensor1d(params));
  const kind = spec.training!.optimizer!.kind;
  const optimizer =
    kind.case === "sgd"
      ? tf.train.momentum(kind.value.learningRate, kind.value.momentum)
      : kind.case === "adam"
        ? tf.train.adam(kind.value.learningRate, kind.value.beta1, kind.value.beta2, kind.value.epsilon)
        : undefined;
  if (optimizer === undefined) throw new Error("no optimizer in spec");
  const gradient = new Float32Array(layout.parameterCount);
  for (const planned of ledger(spec, worldSize, steps, input.trainSamples)) {
    const globalBatch = planned.sampleIndices.flatMap((indices) => Array.from(indices));
    model.lossAndGradient(weights.dataSync() as Float32Array, makeBatch(dataset.train, globalBatch), gradient);
    tf.tidy(() => optimizer.applyGradients([{ name: weights.name, tensor: tf.tensor1d(gradient) }]));
  }
  const result = weights.dataSync() as Float32Array;
  weights.dispose();
  optimizer.dispose();
  return Float32Array.from(result);
}
