/**
 * The model's differentiable blocks, each a tf.customGrad with its gradient written out.
 * tf.js's own gradient registry cannot be relied on here: tfjs-core's Node bundle registers
 * no kernel gradients at all (only the @tensorflow/tfjs union package does), and the wasm
 * backend has no Conv2DBackpropFilter kernel. Fused blocks also keep the tape short, and
 * every step is the same fixed sequence of kernels, so results repeat bit for bit.
 * (tfjs-layers, imported by the model code, registers tf.js's own gradients; the layers
 * these blocks do not cover train through those.)
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
 * x (flattened to [n, -1]) times kernel plus bias (none when undefined), then ReLU if `relu`.
 * `inputGradient` is false for the first layer: its input is data, so dx would be a wasted matmul.
 */
export function dense(
  x: tf.Tensor,
  kernel: tf.Tensor2D,
  bias: tf.Tensor1D | undefined,
  relu: boolean,
  inputGradient: boolean,
): tf.Tensor2D {
  return differentiable(bias === undefined ? [x, kernel] : [x, kernel, bias], (x, kernel, bias) => {
    const flat = tf.reshape(x, [x.shape[0] as number, -1]) as tf.Tensor2D;
    const product = tf.matMul(flat, kernel as tf.Tensor2D) as tf.Tensor2D;
    const z: tf.Tensor2D = bias === undefined ? product : tf.add<tf.Tensor2D>(product, bias as tf.Tensor1D);
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
        const dKernel = tf.matMul(tf.transpose(flat), dz);
        return bias === undefined ? [dx, dKernel] : [dx, dKernel, tf.sum(dz, 0)];
      },
    };
  });
}

export interface ConvOptions {
  /** tf.js padding of the stride-1 convolution. */
  padding: "same" | "valid";
  /** A 2x2 max-pool, stride 2, 'valid', after the convolution. */
  pool: boolean;
  relu: boolean;
  /** False for the first layer: its input is data, so dx would be a wasted convolution. */
  inputGradient: boolean;
}

/**
 * conv2d stride 1 (dilation 1), plus bias (none when undefined), then optionally a 2x2
 * max-pool stride 2 'valid' and ReLU. ReLU commutes with max-pool, so it runs on the 4x
 * smaller pooled tensor, forward and backward.
 */
export function convBlock(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor1D | undefined, options: ConvOptions): tf.Tensor4D {
  const { padding, pool, relu, inputGradient } = options;
  return differentiable(bias === undefined ? [x, filter] : [x, filter, bias], (x, filter, bias) => {
    const convolved = tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, 1, padding);
    const z = bias === undefined ? convolved : tf.add<tf.Tensor4D>(convolved, bias);
    const pooled = pool ? tf.maxPool(z, 2, 2, "valid") : z;
    const out = relu ? tf.relu(pooled) : pooled;
    return {
      value: out,
      save: [x, filter, z, pooled, out],
      gradient: (dy, saved) => {
        const [x, filter, z, pooled, out] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
        const dPooled = relu ? reluGradient(dy, out) : dy;
        const dz = pool
          ? tf
              .engine()
              .runKernel<tf.Tensor4D>("MaxPoolGrad", { dy: dPooled, input: z, output: pooled }, { filterSize: 2, strides: 2, pad: "valid" })
          : dPooled;
        const dx = inputGradient ? inputGradientOfConv(dz, filter, padding) : tf.zerosLike(x);
        const dFilter = filterGradient(x, dz, filter.shape, padding);
        return bias === undefined ? [dx, dFilter] : [dx, dFilter, tf.sum(dz, [0, 1, 2])];
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

/**
 * Mean binary cross-entropy of sigmoid(logits) against targets in [0, 1], over every
 * element, in the stable form max(z, 0) - z*t + log(1 + exp(-|z|)). Its gradient w.r.t.
 * the logits is (sigmoid(z) - t) / size.
 */
export function meanSigmoidCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  return differentiable([logits, targets], (logits, targets) => {
    return {
      value: tf.mean(sigmoidCrossEntropy(logits as tf.Tensor2D, targets as tf.Tensor2D)),
      save: [logits, targets],
      gradient: (dy, saved) => {
        const [logits, targets] = saved as [tf.Tensor2D, tf.Tensor2D];
        const scale = tf.div(dy, logits.size);
        return [tf.mul(tf.sub(tf.sigmoid(logits), targets), scale), tf.zerosLike(targets)];
      },
    };
  });
}

/** Per-element binary cross-entropy of sigmoid(logits), in the stable form. */
export function sigmoidCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Tensor2D {
  return tf.add(tf.sub(tf.relu(logits), tf.mul(logits, targets)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
}

/** ReLU passes the gradient where its output is positive (tf.js's choice at 0: none). */
function reluGradient<T extends tf.Tensor>(dy: T, out: T): T {
  return tf.mul(dy, tf.step(out));
}

/** [before, after] per spatial dimension of a stride-1 conv with a kh x kw filter. */
function paddingOf(padding: "same" | "valid", kh: number, kw: number): [[number, number], [number, number]] {
  // tf.js 'same' for stride 1: k - 1 elements in all, the odd one after.
  const same = (k: number): [number, number] => [Math.floor((k - 1) / 2), k - 1 - Math.floor((k - 1) / 2)];
  return padding === "same"
    ? [same(kh), same(kw)]
    : [
        [0, 0],
        [0, 0],
      ];
}

/**
 * dx for a stride-1 conv: a conv2d of dz with the filter flipped spatially and its in/out
 * swapped, padded the other way round (k - 1 less the forward padding). Same result as
 * tf.conv2dTranspose, but wasm runs this through XNNPACK (~4x faster than its
 * Conv2DBackpropInput loop).
 */
function inputGradientOfConv(dz: tf.Tensor4D, filter: tf.Tensor4D, padding: "same" | "valid"): tf.Tensor4D {
  const [kh, kw] = filter.shape;
  const [[top, bottom], [left, right]] = paddingOf(padding, kh, kw);
  const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]);
  return tf.conv2d(dz, flipped, 1, [
    [0, 0],
    [kh - 1 - top, kh - 1 - bottom],
    [kw - 1 - left, kw - 1 - right],
    [0, 0],
  ]);
}

/**
 * dW for a stride-1 conv: dW[a,b,i,o] = sum over n,h,w of xPadded[n,h+a,w+b,i] * dz[n,h,w,o],
 * which is itself a conv2d of x (channels as batch, samples as channels) with dz as an
 * Ho x Wo filter, padded like the forward pass. wasm has no Conv2DBackpropFilter kernel and
 * cpu's is ~20-50x slower than this, so only native TensorFlow runs its own kernel.
 */
function filterGradient(
  x: tf.Tensor4D,
  dz: tf.Tensor4D,
  filterShape: [number, number, number, number],
  padding: "same" | "valid",
): tf.Tensor4D {
  if (tf.getBackend() === "tensorflow") {
    return tf
      .engine()
      .runKernel<tf.Tensor4D>("Conv2DBackpropFilter", { x, dy: dz }, { strides: 1, pad: padding, dataFormat: "NHWC", filterShape });
  }
  const [[top, bottom], [left, right]] = paddingOf(padding, filterShape[0], filterShape[1]);
  const xT = tf.transpose(x, [3, 1, 2, 0]); // [in, H, W, n]
  const dzT = tf.transpose(dz, [1, 2, 0, 3]); // [Ho, Wo, n, out]
  const g = tf.conv2d(xT, dzT, 1, [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ]); // [in, kh, kw, out]
  return tf.transpose(g, [1, 2, 0, 3]);
}
