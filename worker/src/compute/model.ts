/**
 * The model as a pure function of ONE flat parameter vector (layout order), so the worker
 * can pull, differentiate and push plain Float32Arrays with no tf.js state between steps.
 * Tensors are rebuilt from subarray views each call inside tf.tidy, so nothing leaks.
 */
import * as tf from "@tensorflow/tfjs-core";
import { invalidField } from "@trainfleet/proto";
import type { ParameterLayout, TensorSlot } from "@trainfleet/spec";
import type { HostBatch } from "./host-batch.js";
import { convBlock, crossEntropy, dense, meanCrossEntropy } from "./layers.js";

export interface Model {
  readonly layout: ParameterLayout;
  /** Mean softmax cross-entropy over the batch; its gradient goes flat into gradientOut. */
  lossAndGradient(params: Float32Array, batch: HostBatch, gradientOut: Float32Array): number;
  /** Correct predictions and the (float64) sum of per-example losses, for exact aggregation. */
  evaluate(params: Float32Array, batch: HostBatch): { correct: number; lossSum: number };
}

/** Call after selectBackend: the model runs on whichever tf.js backend is active. */
export function createModel(layout: ParameterLayout): Model {
  const weights = (params: Float32Array) =>
    layout.tensors.map((t) => tf.tensor(params.subarray(t.offset, t.offset + t.size), t.shape, "float32"));

  return {
    layout,
    lossAndGradient(params, batch, gradientOut) {
      check(layout, params, batch);
      if (gradientOut.length !== layout.parameterCount) {
        throw invalidField("gradient", `has ${gradientOut.length} elements, the layout ${layout.parameterCount}`);
      }
      return tf.tidy(() => {
        const x = input(layout, batch);
        const labels = oneHot(layout, batch);
        const f = (...w: tf.Tensor[]) => meanCrossEntropy(logits(x, w), labels);
        const { value, grads } = tf.valueAndGrads(f)(weights(params));
        grads.forEach((g, i) => gradientOut.set(g.dataSync(), (layout.tensors[i] as TensorSlot).offset));
        return value.dataSync()[0] as number;
      });
    },
    evaluate(params, batch) {
      check(layout, params, batch);
      const [predicted, losses] = tf.tidy(() => {
        const out = logits(input(layout, batch), weights(params));
        return [tf.argMax(out, 1).dataSync(), crossEntropy(tf.logSoftmax(out), oneHot(layout, batch)).dataSync()];
      });
      let correct = 0;
      let lossSum = 0;
      for (let i = 0; i < batch.count; i++) {
        if (predicted[i] === batch.labels[i]) correct++;
        lossSum += losses[i] as number;
      }
      return { correct, lossSum };
    },
  };
}

/**
 * The forward pass, read off the layout: tensors come in (kernel, bias) pairs; a rank-4
 * kernel is a conv block, a rank-2 kernel a dense layer (ReLU on all but the output).
 */
function logits(x: tf.Tensor, w: tf.Tensor[]): tf.Tensor2D {
  let h = x;
  for (let i = 0; i < w.length; i += 2) {
    const kernel = w[i] as tf.Tensor;
    const bias = w[i + 1] as tf.Tensor1D;
    h =
      kernel.rank === 4
        ? convBlock(h as tf.Tensor4D, kernel as tf.Tensor4D, bias, i > 0)
        : dense(h, kernel as tf.Tensor2D, bias, i + 2 < w.length, i > 0);
  }
  return h as tf.Tensor2D;
}

function oneHot(layout: ParameterLayout, batch: HostBatch): tf.Tensor2D {
  return tf.oneHot(tf.tensor1d(batch.labels, "int32"), layout.input.classes) as tf.Tensor2D;
}

function input(layout: ParameterLayout, batch: HostBatch): tf.Tensor {
  const { height, width, channels } = layout.input;
  return layout.kind === "cnn"
    ? tf.tensor4d(batch.x, [batch.count, height, width, channels])
    : tf.tensor2d(batch.x, [batch.count, height * width * channels]);
}

function check(layout: ParameterLayout, params: Float32Array, batch: HostBatch): void {
  const { height, width, channels, classes } = layout.input;
  if (params.length !== layout.parameterCount) {
    throw invalidField("parameters", `has ${params.length} elements, the layout ${layout.parameterCount}`);
  }
  if (batch.count < 1) throw invalidField("batch", "is empty");
  if (batch.x.length !== batch.count * height * width * channels || batch.labels.length !== batch.count) {
    throw invalidField(
      "batch",
      `x has ${batch.x.length} values and ${batch.labels.length} labels for ${batch.count} samples of ${height}x${width}x${channels}`,
    );
  }
  for (const label of batch.labels) {
    if (label < 0 || label >= classes) throw invalidField("batch.labels", `label ${label} is outside [0, ${classes})`);
  }
}
