import { createRequire } from "node:module";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import * as tf from "@tensorflow/tfjs-core";
import { Code, ModelSpecSchema, TrainfleetError } from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import type { DataShape } from "@trainfleet/spec";
import { initialParameters, type ParameterLayout, parameterLayout, uniform01 } from "@trainfleet/spec";
import { beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../src/compute/backend.js";
import { type HostBatch, makeBatch } from "../src/compute/host-batch.js";
import { convBlock, dense, meanCrossEntropy } from "../src/compute/layers.js";
import { buildModel, type Model } from "../src/compute/model.js";
import type { ImageSplit } from "../src/dataset/fashion-mnist.js";

const DATA: DataShape = { featureShape: [28, 28, 1], classes: 10, labelSize: 0, trainRecords: 60_000, evalRecords: 10_000 };
type Spec = MessageInitShape<typeof ModelSpecSchema>;
const MLP: Spec = { kind: { case: "mlp", value: { hiddenUnits: [16] } } };
// Kernel 3, and an even kernel 4 that tf.js 'same' pads asymmetrically; two conv layers each,
// so the gradient through a conv's input is checked too.
const CNN3: Spec = { kind: { case: "cnn", value: { convFilters: [2, 3], kernelSize: 3, denseUnits: 8 } } };
const CNN4: Spec = { kind: { case: "cnn", value: { convFilters: [2, 3], kernelSize: 4, denseUnits: 0 } } };
const MODELS = [
  ["mlp 784-16-10", MLP],
  ["cnn [2,3] k3 dense 8", CNN3],
  ["cnn [2,3] k4", CNN4],
] as const;
const layoutOf = (spec: Spec) => parameterLayout(create(ModelSpecSchema, spec), DATA);
const build = (spec: Spec, fuse = true) => buildModel(create(ModelSpecSchema, spec), DATA, { fuse });

/** Glorot kernels plus small non-zero biases, so bias gradients are not a special case. */
function parameters(layout: ParameterLayout, seed: number): Float32Array {
  const p = initialParameters(layout, seed, 0, layout.parameterCount);
  for (const t of layout.tensors) {
    if (t.fanIn === 0) for (let i = t.offset; i < t.offset + t.size; i++) p[i] = (uniform01(seed + 1, i) - 0.5) * 0.2;
  }
  return p;
}

/** A synthetic split of random pixels; labels are not learnable, which is fine for gradients. */
function split(count: number): ImageSplit {
  const images = Uint8Array.from({ length: count * 784 }, (_, i) => Math.floor(uniform01(99, i) * 256));
  const labels = Uint8Array.from({ length: count }, (_, i) => (i * 7) % 10);
  return { count, rows: 28, cols: 28, images, labels };
}
const SPLIT = split(64);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/**
 * Mean softmax cross-entropy in float64, straight from the layout's definition: conv 'same'
 * (tf.js padding: the odd element after) + bias + ReLU + 2x2 'valid' max-pool, flatten in
 * HWC order, dense layers with ReLU between.
 */
function referenceLoss(layout: ParameterLayout, p: ArrayLike<number>, batch: HostBatch): number {
  const { height, width, channels, classes } = layout.input;
  const pixels = height * width * channels;
  let total = 0;
  for (let n = 0; n < batch.count; n++) {
    let act = Array.from(batch.x.subarray(n * pixels, (n + 1) * pixels));
    let [h, w, c] = [height, width, channels];
    for (let t = 0; t < layout.tensors.length; t += 2) {
      const kernel = layout.tensors[t]!;
      const bias = layout.tensors[t + 1]!;
      const last = t + 2 === layout.tensors.length;
      if (kernel.shape.length === 4) {
        const [k, , , out] = kernel.shape as [number, number, number, number];
        const before = Math.floor((k - 1) / 2);
        const conv = new Array<number>(h * w * out);
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++)
            for (let o = 0; o < out; o++) {
              let s = p[bias.offset + o]!;
              for (let a = 0; a < k; a++)
                for (let b = 0; b < k; b++) {
                  const yy = y + a - before;
                  const xx = x + b - before;
                  if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                  for (let i = 0; i < c; i++) s += act[(yy * w + xx) * c + i]! * p[kernel.offset + ((a * k + b) * c + i) * out + o]!;
                }
              conv[(y * w + x) * out + o] = Math.max(0, s);
            }
        const [ph, pw] = [Math.floor(h / 2), Math.floor(w / 2)];
        act = new Array<number>(ph * pw * out);
        for (let y = 0; y < ph; y++)
          for (let x = 0; x < pw; x++)
            for (let o = 0; o < out; o++) {
              const at = (yy: number, xx: number) => conv[(yy * w + xx) * out + o]!;
              act[(y * pw + x) * out + o] = Math.max(
                at(2 * y, 2 * x),
                at(2 * y, 2 * x + 1),
                at(2 * y + 1, 2 * x),
                at(2 * y + 1, 2 * x + 1),
              );
            }
        [h, w, c] = [ph, pw, out];
      } else {
        const [inputs, units] = kernel.shape as [number, number];
        const z = new Array<number>(units);
        for (let o = 0; o < units; o++) {
          let s = p[bias.offset + o]!;
          for (let j = 0; j < inputs; j++) s += act[j]! * p[kernel.offset + j * units + o]!;
          z[o] = last ? s : Math.max(0, s);
        }
        act = z;
      }
    }
    const max = Math.max(...act.slice(0, classes));
    const logSumExp = max + Math.log(act.reduce((s, v) => s + Math.exp(v - max), 0));
    total += logSumExp - act[batch.labels[n]!]!;
  }
  return total / batch.count;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function caught(fn: () => unknown): TrainfleetError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TrainfleetError);
    return error as TrainfleetError;
  }
  throw new Error("expected a throw");
}

describe("makeBatch", () => {
  it("gathers samples as float32 NHWC scaled by 1/255, with their labels", () => {
    const batch = makeBatch(SPLIT, [5, 0]);
    expect(batch.count).toBe(2);
    expect(batch.x.length).toBe(2 * 784);
    expect(Array.from(batch.labels)).toEqual([SPLIT.labels[5], SPLIT.labels[0]]);
    for (const p of [0, 1, 400, 783]) {
      expect(batch.x[p]).toBe(Math.fround(SPLIT.images[5 * 784 + p]! / 255));
      expect(batch.x[784 + p]).toBe(Math.fround(SPLIT.images[p]! / 255));
    }
  });

  it("rejects out-of-range or fractional indices as INVALID_ARGUMENT on sample_indices", () => {
    for (const bad of [[64], [-1], [1.5], [0, Number.NaN]]) {
      const error = caught(() => makeBatch(SPLIT, bad));
      expect(error.code).toBe(Code.INVALID_ARGUMENT);
      expect(error.field).toBe("sample_indices");
    }
  });
});

describe("selectBackend", () => {
  const nativeInstalled = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"].some((pkg) => {
    try {
      createRequire(import.meta.url).resolve(pkg);
      return true;
    } catch {
      return false;
    }
  });

  // This machine cannot install tfjs-node (its install downloads libtensorflow), so the
  // missing case is what runs here; where it is installed, forcing it must work instead.
  it("a forced native backend is used where installed, else FAILED_PRECONDITION saying what to install", async () => {
    const outcome = await selectBackend("tensorflow", silentLogger).then(
      (selected) => selected,
      (e: unknown) => e,
    );
    if (nativeInstalled) {
      expect(outcome).toMatchObject({ name: "tensorflow" });
      return;
    }
    expect(outcome).toBeInstanceOf(TrainfleetError);
    expect((outcome as TrainfleetError).code).toBe(Code.FAILED_PRECONDITION);
    expect((outcome as TrainfleetError).message).toContain("npm install @tensorflow/tfjs-node-gpu");
  });
});

/**
 * The presets' forward pass and loss composed straight from the hand-written blocks of
 * layers.ts, as the worker ran them before models were compiled from tf.js Layers models:
 * the compiled plan must run exactly these kernels, so its results are these bits.
 */
function composedBlocks(layout: ParameterLayout, params: Float32Array, batch: HostBatch, gradientOut: Float32Array): number {
  return tf.tidy(() => {
    const { height, width, channels, classes } = layout.input;
    const x =
      layout.kind === "cnn"
        ? tf.tensor4d(batch.x, [batch.count, height, width, channels])
        : tf.tensor2d(batch.x, [batch.count, height * width * channels]);
    const labels = tf.oneHot(tf.tensor1d(batch.labels, "int32"), classes) as tf.Tensor2D;
    const weights = layout.tensors.map((t) => tf.tensor(params.subarray(t.offset, t.offset + t.size), t.shape, "float32"));
    const f = (...w: tf.Tensor[]) => {
      let h = x as tf.Tensor;
      for (let i = 0; i < w.length; i += 2) {
        const [kernel, bias] = [w[i]!, w[i + 1] as tf.Tensor1D];
        h =
          kernel.rank === 4
            ? convBlock(h as tf.Tensor4D, kernel as tf.Tensor4D, bias, { padding: "same", pool: true, relu: true, inputGradient: i > 0 })
            : dense(h, kernel as tf.Tensor2D, bias, i + 2 < w.length, i > 0);
      }
      return meanCrossEntropy(h as tf.Tensor2D, labels);
    };
    const { value, grads } = tf.valueAndGrads(f)(weights);
    grads.forEach((g, i) => gradientOut.set(g.dataSync(), layout.tensors[i]!.offset));
    return value.dataSync()[0] as number;
  });
}

describe.each(["cpu", "wasm"] as const)("model on the %s backend", (backend) => {
  beforeAll(async () => {
    expect((await selectBackend(backend, silentLogger)).name).toBe(backend);
  });

  describe.each(MODELS)("preset %s", (_, spec) => {
    const layout = layoutOf(spec);
    const params = parameters(layout, 11);
    const batch = makeBatch(SPLIT, range(0, 6));
    let model: Model;
    beforeAll(async () => {
      model = await build(spec);
    });

    it("has spec's parameter layout: the same tensors, shapes and offsets, in order", () => {
      expect(model.tensors.map(({ name, shape, offset, size }) => ({ name, shape, offset, size }))).toEqual(
        layout.tensors.map(({ name, shape, offset, size }) => ({ name, shape, offset, size })),
      );
      expect(model.parameterCount).toBe(layout.parameterCount);
      expect(model.plan).toBe("fused");
      expect(model.notExact).toEqual([]);
    });

    it("runs exactly the hand-written blocks: bit for bit their loss and gradient", () => {
      const expected = new Float32Array(layout.parameterCount);
      const actual = new Float32Array(layout.parameterCount);
      const loss = composedBlocks(layout, params, batch, expected);
      expect(model.lossAndGradient(params, batch, actual)).toBe(loss);
      expect(sameBits(actual, expected)).toBe(true);
    });

    it("agrees with tf.js's own gradients of the same Layers model (which wasm cannot run for a conv)", async () => {
      if (backend === "wasm" && spec.kind?.case === "cnn") {
        const refused = await build(spec, false).then(
          () => undefined,
          (e: unknown) => e as TrainfleetError,
        );
        expect(refused?.message).toContain("its layer conv0 (Conv2D) needs the kernel Conv2DBackpropFilter to train");
        return;
      }
      const generic = await build(spec, false);
      expect(generic.plan).toBe("tfjs-gradients");
      const expected = new Float32Array(layout.parameterCount);
      const actual = new Float32Array(layout.parameterCount);
      const loss = generic.lossAndGradient(params, batch, expected);
      expect(Math.abs(model.lossAndGradient(params, batch, actual) - loss)).toBeLessThan(1e-6);
      let worst = 0;
      for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!) - 1e-4 * Math.abs(expected[i]!));
      expect(worst).toBeLessThan(1e-7);
      generic.dispose();
    });

    it("gives the float64 reference loss and its central-difference gradient", () => {
      const gradient = new Float32Array(layout.parameterCount);
      const loss = model.lossAndGradient(params, batch, gradient);
      const p64 = Float64Array.from(params);
      expect(Math.abs(loss - referenceLoss(layout, p64, batch))).toBeLessThan(1e-5);

      // Tiny steps, affordable in float64, so a step rarely straddles a ReLU or max-pool kink.
      const eps = 1e-6;
      for (const t of layout.tensors) {
        for (const j of [0, t.size - 1, Math.floor(uniform01(5, t.offset) * t.size), Math.floor(uniform01(6, t.offset) * t.size)]) {
          const i = t.offset + j;
          const saved = p64[i]!;
          p64[i] = saved + eps;
          const up = referenceLoss(layout, p64, batch);
          p64[i] = saved - eps;
          const down = referenceLoss(layout, p64, batch);
          p64[i] = saved;
          const numeric = (up - down) / (2 * eps);
          expect(Math.abs(gradient[i]! - numeric), `${t.name}[${j}]: ${gradient[i]} vs ${numeric}`).toBeLessThan(
            5e-6 + 1e-3 * Math.abs(numeric),
          );
        }
      }
    });

    it("repeats bit for bit, even after other calls and in another model", async () => {
      const first = new Float32Array(layout.parameterCount);
      const second = new Float32Array(layout.parameterCount);
      const loss = model.lossAndGradient(params, batch, first);
      model.lossAndGradient(parameters(layout, 12), makeBatch(SPLIT, range(20, 30)), new Float32Array(layout.parameterCount));
      expect(model.lossAndGradient(params, batch, second)).toBe(loss);
      expect(sameBits(first, second)).toBe(true);
      const other = await build(spec);
      expect(other.lossAndGradient(params, batch, second)).toBe(loss);
      expect(sameBits(first, second)).toBe(true);
      other.dispose();
    });

    it("mean loss and gradient of 2k samples are the average of those of the two halves of k", () => {
      const whole = new Float32Array(layout.parameterCount);
      const a = new Float32Array(layout.parameterCount);
      const b = new Float32Array(layout.parameterCount);
      const loss = model.lossAndGradient(params, makeBatch(SPLIT, range(0, 16)), whole);
      const lossA = model.lossAndGradient(params, makeBatch(SPLIT, range(0, 8)), a);
      const lossB = model.lossAndGradient(params, makeBatch(SPLIT, range(8, 16)), b);
      expect(Math.abs(loss - (lossA + lossB) / 2)).toBeLessThan(1e-6);
      let worst = 0;
      for (let i = 0; i < whole.length; i++) worst = Math.max(worst, Math.abs(whole[i]! - (a[i]! + b[i]!) / 2));
      expect(worst).toBeLessThan(1e-6);
    });

    it("evaluate's loss sum agrees with the mean loss", () => {
      const loss = model.lossAndGradient(params, batch, new Float32Array(layout.parameterCount));
      const { correct, lossSum } = model.evaluate(params, batch);
      expect(Math.abs(lossSum / batch.count - loss)).toBeLessThan(1e-6);
      expect(correct).toBeGreaterThanOrEqual(0);
      expect(correct).toBeLessThanOrEqual(batch.count);
    });

    it("leaks no tensors across 10 calls", () => {
      const gradient = new Float32Array(layout.parameterCount);
      model.lossAndGradient(params, batch, gradient); // first call may set up backend state
      model.evaluate(params, batch);
      const before = tf.memory();
      for (let i = 0; i < 10; i++) {
        model.lossAndGradient(params, batch, gradient);
        model.evaluate(params, batch);
      }
      expect(tf.memory().numTensors).toBe(before.numTensors);
      expect(tf.memory().numBytes).toBe(before.numBytes);
    });
  });

  it("evaluate counts correct predictions exactly", async () => {
    // No hidden layer, zero biases, kernel[c][c] = 1: an image lit only at pixel c has logit 1
    // for class c and 0 elsewhere, so the prediction is c.
    const model = await build({ kind: { case: "mlp", value: { hiddenUnits: [] } } });
    const params = new Float32Array(model.parameterCount);
    for (let c = 0; c < 10; c++) params[c * 10 + c] = 1;
    const lit = [3, 7, 0, 9, 9, 2];
    const labels = [3, 1, 0, 9, 4, 2]; // predictions 3,7,0,9,9,2: four match
    const x = new Float32Array(lit.length * 784);
    lit.forEach((c, n) => (x[n * 784 + c] = 1));
    const batch = { count: lit.length, x, labels: Int32Array.from(labels) };
    const { correct, lossSum } = model.evaluate(params, batch);
    expect(correct).toBe(4);
    // Each loss is log(9 + e) minus 1 when the label is the lit class.
    expect(lossSum).toBeCloseTo(lit.length * Math.log(9 + Math.E) - 4, 5);
    model.dispose();
  });

  it("rejects a batch or parameter vector that does not fit the model", async () => {
    const model = await build(MLP);
    const layout = layoutOf(MLP);
    const batch = makeBatch(SPLIT, [0, 1]);
    const gradient = new Float32Array(model.parameterCount);
    expect(caught(() => model.lossAndGradient(new Float32Array(3), batch, gradient)).code).toBe(Code.INVALID_ARGUMENT);
    expect(caught(() => model.lossAndGradient(parameters(layout, 1), { ...batch, count: 3 }, gradient)).code).toBe(Code.INVALID_ARGUMENT);
    const badLabel = { ...batch, labels: Int32Array.from([0, 10]) };
    expect(caught(() => model.evaluate(parameters(layout, 1), badLabel)).code).toBe(Code.INVALID_ARGUMENT);
    model.dispose();
  });
});
