/**
 * The model's differentiable blocks, each a tf.customGrad with its gradient written out.
 * tf.js's own gradient registry cannot be relied on here: tfjs-core's Node bundle registers
 * no kernel gradients at all (only the @tensorflow/tfjs union package does), and the wasm
 * backend has no Conv2DBackpropFilter kernel. Fused blocks also keep the tape short, and
 * every step is the same fixed sequence of kernels, so results repeat bit for bit.
 */
import * as tf from "@tensorflow/tfjs-core";

interface Block<T extends tf.Tensor> {
  value: T;
  /** Tensors the gradient needs, handed back to `gradient` as `saved`. */
  save: tf.Tensor[];
  /** One gradient per input, in input order. */
  gradient: (dy: T, saved: tf.Tensor[]) => tf.Tensor[];
}

function differentiable<T extends tf.Tensor>(inputs: tf.Tensor[], forward: (...inputs: tf.Tensor[]) => Block<T>): T {
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args.pop() as tf.GradSaveFunc;
    const block = forward(...(args as tf.Tensor[]));
    save(block.save);
    return { value: block.value, gradFunc: block.gradient };
  });
  return op(...inputs) as T;
}

/**
 * x (flattened to [n, -1]) times kernel plus bias, then ReLU if `relu`. `inputGradient` is
 * false for the first layer: its input is data, so dx would be a wasted matmul.
 */
export function dense(x: tf.Tensor, kernel: tf.Tensor2D, bias: tf.Tensor1D, relu: boolean, inputGradient: boolean): tf.Tensor2D {
  return differentiable([x, kernel, bias], (x, kernel, bias) => {
    const flat = tf.reshape(x, [x.shape[0] as number, -1]) as tf.Tensor2D;
    const z = tf.add<tf.Tensor2D>(tf.matMul(flat, kernel as tf.Tensor2D), bias as tf.Tensor1D);
    const out = relu ? tf.relu(z) : z;
    return {
      value: out,
      save: [flat, kernel as tf.Tensor2D, out],
      gradient: (dy, saved) => {
        const [flat, kernel, out] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        const dz = relu ? reluGradient(dy, out) : dy;
        // Explicit transposes of the small [n, *] operands: wasm's matMul with transpose flags
        // falls off XNNPACK onto a loop 5-10x slower; on cpu it is a wash.
        const dx = inputGradient ? tf.reshape(tf.transpose(tf.matMul(kernel, tf.transpose(dz))), x.shape) : tf.zerosLike(x);
        return [dx, tf.matMul(tf.transpose(flat), dz), tf.sum(dz, 0)];
      },
    };
  });
}

/**
 * conv2d k x k 'same' stride 1, plus bias, ReLU, then 2x2 max-pool stride 2 'valid'. ReLU
 * commutes with max-pool, so it runs on the 4x smaller pooled tensor, forward and backward.
 */
export function convBlock(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor1D, inputGradient: boolean): tf.Tensor4D {
  return differentiable([x, filter, bias], (x, filter, bias) => {
    const z = tf.add<tf.Tensor4D>(tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, 1, "same"), bias);
    const pooled = tf.maxPool(z, 2, 2, "valid");
    const out = tf.relu(pooled);
    return {
      value: out,
      save: [x, filter, z, pooled, out],
      gradient: (dy, saved) => {
        const [x, filter, z, pooled, out] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
        const dz = tf
          .engine()
          .runKernel<tf.Tensor4D>(
            "MaxPoolGrad",
            { dy: reluGradient(dy, out), input: z, output: pooled },
            { filterSize: 2, strides: 2, pad: "valid" },
          );
        const dx = inputGradient ? inputGradientOfConv(dz, filter) : tf.zerosLike(x);
        return [dx, filterGradient(x, dz, filter.shape), tf.sum(dz, [0, 1, 2])];
      },
    };
  });
}

/** Mean softmax cross-entropy; its gradient w.r.t. logits is (softmax - oneHot) / n. */
export function meanCrossEntropy(logits: tf.Tensor2D, oneHot: tf.Tensor2D): tf.Scalar {
  return differentiable([logits, oneHot], (logits, oneHot) => {
    const logProbs = tf.logSoftmax(logits as tf.Tensor2D);
    return {
      value: tf.mean(crossEntropy(logProbs, oneHot as tf.Tensor2D)),
      save: [logProbs, oneHot as tf.Tensor2D],
      gradient: (dy, saved) => {
        const [logProbs, oneHot] = saved as [tf.Tensor2D, tf.Tensor2D];
        const scale = tf.div(dy, logProbs.shape[0]);
        return [tf.mul(tf.sub(tf.exp(logProbs), oneHot), scale), tf.zerosLike(oneHot)];
      },
    };
  });
}

/** Per-example cross-entropy from log-probabilities. */
export function crossEntropy(logProbs: tf.Tensor2D, oneHot: tf.Tensor2D): tf.Tensor1D {
  return tf.neg(tf.sum<tf.Tensor1D>(tf.mul(oneHot, logProbs), 1));
}

/** ReLU passes the gradient where its output is positive (tf.js's choice at 0: none). */
function reluGradient<T extends tf.Tensor>(dy: T, out: T): T {
  return tf.mul(dy, tf.step(out));
}

/** tf.js 'same' padding for stride 1: k - 1 elements in all, the odd one after. */
function samePadding(k: number): { before: number; after: number } {
  const before = Math.floor((k - 1) / 2);
  return { before, after: k - 1 - before };
}

/**
 * dx for a stride-1 'same' conv: a conv2d of dz with the filter flipped spatially and its in/out
 * swapped, padded the other way round. Same result as tf.conv2dTranspose, but wasm runs
 * this through XNNPACK (~4x faster than its Conv2DBackpropInput loop).
 */
function inputGradientOfConv(dz: tf.Tensor4D, filter: tf.Tensor4D): tf.Tensor4D {
  const { before, after } = samePadding(filter.shape[0]);
  const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]);
  return tf.conv2d(dz, flipped, 1, [
    [0, 0],
    [after, before],
    [after, before],
    [0, 0],
  ]);
}

/**
 * dW for a stride-1 'same' conv: dW[a,b,i,o] = sum over n,h,w of xPadded[n,h+a,w+b,i] * dz[n,h,w,o],
 * which is itself a conv2d of x (channels as batch, samples as channels) with dz as an H x W
 * filter, padded like 'same'. wasm has no Conv2DBackpropFilter kernel and cpu's is ~20-50x
 * slower than this, so only native TensorFlow runs its own kernel.
 */
function filterGradient(x: tf.Tensor4D, dz: tf.Tensor4D, filterShape: [number, number, number, number]): tf.Tensor4D {
  if (tf.getBackend() === "tensorflow") {
    return tf
      .engine()
      .runKernel<tf.Tensor4D>("Conv2DBackpropFilter", { x, dy: dz }, { strides: 1, pad: "same", dataFormat: "NHWC", filterShape });
  }
  const { before, after } = samePadding(filterShape[0]);
  const xT = tf.transpose(x, [3, 1, 2, 0]); // [in, H, W, n]
  const dzT = tf.transpose(dz, [1, 2, 0, 3]); // [H, W, n, out]
  const g = tf.conv2d(xT, dzT, 1, [
    [0, 0],
    [before, after],
    [before, after],
    [0, 0],
  ]); // [in, k, k, out]
  return tf.transpose(g, [1, 2, 0, 3]);
}
