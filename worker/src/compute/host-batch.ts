/**
 * A minibatch in plain host memory, the form the model takes: pixels as float32 NHWC and
 * integer labels. Kept apart from tf.js tensors so batches can be built, checked and
 * split without a backend.
 */
import { invalidField } from "@trainfleet/proto";
import type { ImageSplit } from "../dataset/fashion-mnist.js";

export interface HostBatch {
  count: number;
  /** count x one sample's features, row-major (images NHWC, pixels in [0, 1]). */
  x: Float32Array;
  /** Classification: one class index per sample. Regression: empty. */
  labels: Int32Array;
  /** Regression: count x the label size values. Classification: absent. */
  targets?: Float32Array;
}

/** Byte -> Math.fround(byte / 255), looked up instead of divided per pixel. */
const SCALE = Float32Array.from({ length: 256 }, (_, b) => Math.fround(b / 255));

/** Gathers the samples at `indices` (grayscale, so C = 1), scaling bytes by 1/255. */
export function makeBatch(split: ImageSplit, indices: ArrayLike<number>): HostBatch {
  const pixels = split.rows * split.cols;
  const count = indices.length;
  const x = new Float32Array(count * pixels);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const index = indices[i] as number;
    if (!Number.isInteger(index) || index < 0 || index >= split.count) {
      throw invalidField("sample_indices", `index ${index} (position ${i}) is outside the split's ${split.count} samples`);
    }
    const base = index * pixels;
    for (let p = 0; p < pixels; p++) x[i * pixels + p] = SCALE[split.images[base + p] as number] as number;
    labels[i] = split.labels[index] as number;
  }
  return { count, x, labels };
}
