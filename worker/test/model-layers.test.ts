/**
 * A user's Layers model, written by tf.js's own model.save (its http save handler, into a
 * real server's folder), through buildModel: its layout, its inspection, and its training
 * against tf.js's own model.fit on the same batches in the same order.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { sha256Hex } from "@trainfleet/artifacts";
import { type Loss, ModelSpecSchema } from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import type { DataShape } from "@trainfleet/spec";
import { uniform01 } from "@trainfleet/spec";
import { type ModelFileServer, startModelFileServer } from "@trainfleet/testing/fixtures/tfjs-saved-model";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../src/compute/backend.js";
import type { HostBatch } from "../src/compute/host-batch.js";
import type { Model } from "../src/compute/model.js";
import { buildModel } from "../src/compute/model.js";
import { inspectModel, layoutDigest } from "../src/compute/model-inspection.js";

const DATA: DataShape = { featureShape: [6, 6, 1], classes: 4, labelSize: 0, trainRecords: 320, evalRecords: 32 };
const PIXELS = 36;
const BATCH = 16;
const STEPS = 20;
const X = Float32Array.from({ length: STEPS * BATCH * PIXELS }, (_, i) => uniform01(3, i));
const LABELS = Int32Array.from({ length: STEPS * BATCH }, (_, i) => Math.floor(uniform01(4, i) * DATA.classes));
const batchAt = (step: number, size = BATCH): HostBatch => ({
  count: size,
  x: X.subarray(step * size * PIXELS, (step + 1) * size * PIXELS),
  labels: LABELS.subarray(step * size, (step + 1) * size),
});

let dir: string;
let server: ModelFileServer;
beforeAll(async () => {
  expect((await selectBackend("cpu", silentLogger)).name).toBe("cpu");
  dir = await mkdtemp(join(tmpdir(), "model-layers-"));
  server = await startModelFileServer(dir);
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const layersSpec = (uri: string, more: { loss?: Loss; module?: string; sha256?: string } = {}) =>
  create(ModelSpecSchema, { kind: { case: "layers", value: { uri, ...more } } });

/** Seeded initial weights: every run compares the same numbers (Adam at 0.01 on wasm comes near the tolerance). */
const seeded = (seed: number) => tfl.initializers.glorotUniform({ seed });

/** Model shapes a user might bring, each built fresh (tf.js layers belong to one model). */
const shapes = {
  /** Flatten + Dense: hand-written blocks only. */
  dense: () =>
    tfl.sequential({
      layers: [
        tfl.layers.flatten({ inputShape: [6, 6, 1] }),
        tfl.layers.dense({ kernelInitializer: seeded(1), units: 12, activation: "relu" }),
        tfl.layers.dense({ kernelInitializer: seeded(2), units: 4, activation: "softmax" }),
      ],
    }),
  /** A 'valid' stride-1 conv with a max-pool after it: one hand-written block. */
  conv: () =>
    tfl.sequential({
      layers: [
        tfl.layers.conv2d({
          kernelInitializer: seeded(3),
          inputShape: [6, 6, 1],
          filters: 3,
          kernelSize: 3,
          padding: "valid",
          activation: "relu",
        }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.flatten(),
        tfl.layers.dense({ kernelInitializer: seeded(4), units: 4, activation: "softmax" }),
      ],
    }),
  /** A Dense without bias (a hand-written block) between layers run by tf.js's gradients: BatchNormalization, Activation. */
  batchnorm: () =>
    tfl.sequential({
      layers: [
        tfl.layers.flatten({ inputShape: [6, 6, 1] }),
        tfl.layers.dense({ kernelInitializer: seeded(5), units: 8, useBias: false }),
        tfl.layers.batchNormalization(),
        tfl.layers.activation({ activation: "relu" }),
        tfl.layers.dense({ kernelInitializer: seeded(6), units: 4, activation: "softmax" }),
      ],
    }),
  /** Not a chain (a skip connection): the whole model through tf.js's gradients. */
  branched: () => {
    const input = tfl.input({ shape: [6, 6, 1] });
    const flat = tfl.layers.flatten().apply(input) as tfl.SymbolicTensor;
    const a = tfl.layers.dense({ kernelInitializer: seeded(7), units: 8, activation: "relu" }).apply(flat) as tfl.SymbolicTensor;
    const b = tfl.layers.dense({ kernelInitializer: seeded(8), units: 8, activation: "relu" }).apply(a) as tfl.SymbolicTensor;
    const sum = tfl.layers.add().apply([a, b]) as tfl.SymbolicTensor;
    return tfl.model({
      inputs: input,
      outputs: tfl.layers.dense({ kernelInitializer: seeded(9), units: 4, activation: "softmax" }).apply(sum) as tfl.SymbolicTensor,
    });
  },
  /** tanh, LayerNormalization and an L2 penalty: through tf.js's own gradients. */
  generic: () =>
    tfl.sequential({
      layers: [
        tfl.layers.flatten({ inputShape: [6, 6, 1] }),
        tfl.layers.dense({
          kernelInitializer: seeded(10),
          units: 10,
          activation: "tanh",
          kernelRegularizer: tfl.regularizers.l2({ l2: 0.01 }),
        }),
        tfl.layers.layerNormalization(),
        tfl.layers.dense({ kernelInitializer: seeded(11), units: 4, activation: "softmax" }),
      ],
    }),
};

async function saved(name: string, model: tfl.LayersModel, loss: string | undefined = "sparseCategoricalCrossentropy"): Promise<string> {
  if (loss !== undefined) model.compile({ optimizer: "sgd", loss });
  const path = await server.save(model, name, { includeOptimizer: loss !== undefined });
  model.dispose();
  return path;
}

function flat(weights: tf.Tensor[]): Float32Array {
  return Float32Array.from(weights.flatMap((w) => Array.from(w.dataSync())));
}

/** The largest |a - b| beyond atol + rtol * |b|, with where it is (0 when all are within). */
function worstExcess(actual: Float32Array, expected: Float32Array, rtol: number, atol: number): { excess: number; at: number } {
  let worst = { excess: 0, at: -1 };
  for (let i = 0; i < expected.length; i++) {
    const excess = Math.abs(actual[i]! - expected[i]!) - (atol + rtol * Math.abs(expected[i]!));
    if (excess > worst.excess) worst = { excess, at: i };
  }
  return worst;
}

describe("a model saved by tf.js's model.save", () => {
  it("loads with its trainable weights as the layout and its saved weights as the parameters", async () => {
    const original = shapes.dense();
    const weights = flat(original.trainableWeights.map((w) => w.read()));
    const names = original.trainableWeights.map((w) => w.originalName);
    const path = await saved("layout", original);
    const model = await buildModel(layersSpec(path), DATA);
    expect(model.tensors.map((t) => t.name)).toEqual(names);
    expect(model.tensors.map((t) => t.shape)).toEqual([[36, 12], [12], [12, 4], [4]]);
    expect(model.tensors.map((t) => t.offset)).toEqual([0, 432, 444, 492]);
    expect(model.parameterCount).toBe(496);
    expect(Array.from(model.parameters())).toEqual(Array.from(weights));
    expect(model.plan).toBe("fused");
    expect(model.loss).toMatchObject({ name: "sparseCategoricalCrossentropy", source: "the model's trainingConfig" });
    expect(model.notExact).toEqual([]);
    model.dispose();
  });

  it("inspect describes the layout, its digest, the artifact and the plan", async () => {
    const path = await saved("inspect", shapes.generic());
    const inspection = await inspectModel(layersSpec(path), DATA);
    const json = await readFile(path);
    const weightsBin = await readFile(join(dir, "inspect", "model.weights.bin"));
    expect(inspection.parameterCount).toBe(36 * 10 + 10 + 10 + 10 + 10 * 4 + 4);
    expect(inspection.layoutDigest).toBe(layoutDigest(inspection.tensors));
    // LayerNormalization's gamma starts at one, not zero like a bias: seeded initialisation must know.
    expect(inspection.tensors.map((t) => t.name.split("/")[1])).toEqual(["kernel", "bias", "gamma", "beta", "kernel", "bias"]);
    expect(inspection.initializers).toEqual(["VarianceScaling", "Zeros", "Ones", "Zeros", "VarianceScaling", "Zeros"]);
    expect(inspection.plan).toBe("tfjs-gradients");
    expect(inspection.tfjsGradientLayers.some((name) => name.startsWith("layer_normalization"))).toBe(true);
    expect(inspection.loss).toBe("sparseCategoricalCrossentropy (from the model's trainingConfig)");
    expect(inspection.artifact).toMatchObject({
      digest: sha256Hex(json, weightsBin),
      hasWeights: true,
      inputShape: [6, 6, 1],
      outputShape: [4],
      notExact: [],
      tensors: inspection.tensors.map(({ name, shape }, i) => ({
        name,
        shape,
        initializer: ["glorot-uniform", "zeros", "ones", "zeros", "glorot-uniform", "zeros"][i],
      })),
      buffers: [],
    });
  });

  it("inspect describes a preset the same way, with no artifact", async () => {
    const inspection = await inspectModel(create(ModelSpecSchema, { kind: { case: "mlp", value: { hiddenUnits: [5] } } }), DATA);
    expect(inspection.tensors).toEqual([
      { name: "dense0/kernel", shape: [36, 5], trainable: true },
      { name: "dense0/bias", shape: [5], trainable: true },
      { name: "output/kernel", shape: [5, 4], trainable: true },
      { name: "output/bias", shape: [4], trainable: true },
    ]);
    expect(inspection).toMatchObject({
      parameterCount: 209,
      trainableCount: 209,
      plan: "fused",
      tfjsGradientLayers: [],
      notExact: [],
      artifact: undefined,
    });
    expect(inspection.loss).toBe("sparseCategoricalCrossentropy (from the preset)");
  });

  describe.each([
    ["SGD", "cpu", () => tf.train.sgd(0.1)],
    ["Adam", "cpu", () => tf.train.adam(0.01)],
    ["SGD", "wasm", () => tf.train.sgd(0.1)],
    ["Adam", "wasm", () => tf.train.adam(0.01)],
  ] as const)("%s over 20 steps on %s", (optimizerName, backend, optimizer) => {
    beforeAll(async () => {
      await selectBackend(backend, silentLogger);
    });
    afterAll(async () => {
      await selectBackend("cpu", silentLogger);
    });

    it.each(Object.keys(shapes) as Array<keyof typeof shapes>)(
      "%s: buildModel's gradients stay within rtol 1e-5 / atol 1e-6 of tf.js's model.fit",
      async (shape) => {
        const name = `fit-${shape}-${optimizerName}-${backend}`;
        const path = await saved(name, shapes[shape]());

        // tf.js's own conv gradient needs a kernel wasm lacks (Conv2DBackpropFilter): its fit runs on cpu.
        const fitBackend = shape === "conv" ? "cpu" : backend;
        await selectBackend(fitBackend, silentLogger);
        const expected = await fitted(name, "sparseCategoricalCrossentropy", optimizer(), Float32Array.from(LABELS), 1);
        await selectBackend(backend, silentLogger);

        const model = await buildModel(layersSpec(path), DATA);
        expect(model.plan).toBe(shape === "dense" || shape === "conv" ? "fused" : "tfjs-gradients");
        // Only what has no hand-written block runs through tf.js's gradients.
        if (shape === "batchnorm") expect(model.tfjsGradientLayers.map((layer) => layer.split("_")[0])).toEqual(["batch", "activation"]);
        const actual = train(model, optimizer(), batchAt);
        // The batchnorm model's moving statistics are compared too: they move as model.fit moves them.
        expect(actual.length).toBe(expected.length);
        expect(worstExcess(actual, expected, 1e-5, 1e-6)).toEqual({ excess: 0, at: -1 });
        model.dispose();
      },
    );
  });
});

describe("binary and regression models", () => {
  const regression = Float32Array.from({ length: STEPS * BATCH * 2 }, (_, i) => uniform01(5, i) * 2 - 1);
  const cases = [
    {
      name: "binary",
      loss: "binaryCrossentropy",
      data: { ...DATA, classes: 2 },
      units: 1,
      activation: "sigmoid",
      plan: "fused",
      ys: Float32Array.from(LABELS, (label) => label % 2),
      batch: (step: number): HostBatch => ({ ...batchAt(step), labels: batchAt(step).labels.map((label) => label % 2) }),
    },
    {
      name: "regression",
      loss: "meanSquaredError",
      data: { ...DATA, classes: 0, labelSize: 2 },
      units: 2,
      activation: "linear",
      plan: "fused",
      ys: regression,
      batch: (step: number): HostBatch => ({
        ...batchAt(step),
        labels: new Int32Array(0),
        targets: regression.subarray(step * BATCH * 2, (step + 1) * BATCH * 2),
      }),
    },
  ] as const;

  it.each(cases)("$name ($loss) stays within rtol 1e-5 / atol 1e-6 of tf.js's model.fit over 20 Adam steps", async (c) => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.flatten({ inputShape: [6, 6, 1] }),
        tfl.layers.dense({ units: 6, activation: "relu" }),
        tfl.layers.dense({ units: c.units, activation: c.activation }),
      ],
    });
    const path = await saved(`fit-${c.name}`, model, c.loss);
    const expected = await fitted(`fit-${c.name}`, c.loss, tf.train.adam(0.01), c.ys, c.units);
    const built = await buildModel(layersSpec(path), c.data);
    expect(built.plan).toBe(c.plan);
    expect(worstExcess(train(built, tf.train.adam(0.01), c.batch), expected, 1e-5, 1e-6)).toEqual({ excess: 0, at: -1 });
    // Evaluation counts what the loss means: 0.5 and over is class 1; regression counts nothing correct.
    const { correct, lossSum } = built.evaluate(built.parameters(), c.batch(0));
    expect(correct).toBe(c.name === "binary" ? countBinaryCorrect(built, c.batch(0)) : 0);
    expect(
      Math.abs(lossSum / BATCH - built.lossAndGradient(built.parameters(), c.batch(0), new Float32Array(built.parameterCount))),
    ).toBeLessThan(1e-6);
    built.dispose();
  });
});

function countBinaryCorrect(model: Model, batch: HostBatch): number {
  const p = tf.tidy(() => (model.layersModel.predict(tf.tensor(batch.x, [batch.count, 6, 6, 1])) as tf.Tensor).dataSync());
  return Array.from(p).filter((v, i) => (v >= 0.5 ? 1 : 0) === batch.labels[i]).length;
}

/** The trainable weights after tf.js's own model.fit of the saved model `name`: one epoch, batches of BATCH in order. */
async function fitted(name: string, loss: string, optimizer: tf.Optimizer, ys: Float32Array, labelWidth: number): Promise<Float32Array> {
  const reference = await tfl.loadLayersModel(`${server.url}/${name}/model.json`);
  reference.compile({ optimizer, loss });
  const xs = tf.tensor(X, [STEPS * BATCH, 6, 6, 1]);
  const labels = tf.tensor2d(ys, [STEPS * BATCH, labelWidth]);
  await reference.fit(xs, labels, { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0 });
  // Its buffers too (BatchNormalization's moving statistics, which fit moves), after the trainable weights as in the layout.
  const weights = flat([...reference.trainableWeights, ...reference.nonTrainableWeights].map((w) => w.read()));
  tf.dispose([xs, labels]);
  reference.dispose();
  return weights;
}

/** STEPS steps of `optimizer` (tf.js's own update rule) applied to buildModel's gradients; the buffers as each step leaves them. */
function train(model: Model, optimizer: tf.Optimizer, batch: (step: number) => HostBatch): Float32Array {
  const params = model.parameters();
  const trainable = model.tensors.filter((t) => t.trainable);
  const variables = trainable.map((t) => tf.variable(tf.tensor(params.subarray(t.offset, t.offset + t.size), t.shape)));
  const gradient = new Float32Array(model.parameterCount);
  for (let step = 0; step < STEPS; step++) {
    params.set(flat(variables));
    model.lossAndGradient(params, batch(step), gradient);
    params.set(gradient.subarray(model.trainableCount), model.trainableCount);
    tf.tidy(() =>
      optimizer.applyGradients(
        Object.fromEntries(
          trainable.map((t, i) => [variables[i]!.name, tf.tensor(gradient.subarray(t.offset, t.offset + t.size), t.shape)]),
        ),
      ),
    );
  }
  params.set(flat(variables));
  tf.dispose(variables);
  optimizer.dispose();
  return params;
}

/** What tensorflowjs_converter writes for a Keras 2 Sequential: model_config inside the topology, snake_case configs, a Keras loss object. */
function kerasModelJson(): Record<string, unknown> {
  const dense = (name: string, units: number, activation: string) => ({
    class_name: "Dense",
    config: {
      name,
      trainable: true,
      dtype: "float32",
      units,
      activation,
      use_bias: true,
      kernel_initializer: { module: "keras.initializers", class_name: "GlorotUniform", config: { seed: null }, registered_name: null },
      bias_initializer: { module: "keras.initializers", class_name: "Zeros", config: {}, registered_name: null },
      kernel_regularizer: null,
      bias_regularizer: null,
      activity_regularizer: null,
      kernel_constraint: null,
      bias_constraint: null,
    },
  });
  return {
    format: "layers-model",
    generatedBy: "keras v2.15.0",
    convertedBy: "TensorFlow.js Converter v4.22.0",
    modelTopology: {
      keras_version: "2.15.0",
      backend: "tensorflow",
      model_config: {
        class_name: "Sequential",
        config: {
          name: "sequential",
          layers: [
            {
              class_name: "InputLayer",
              config: { batch_input_shape: [null, 6, 6, 1], dtype: "float32", sparse: false, ragged: false, name: "flatten_input" },
            },
            { class_name: "Flatten", config: { name: "flatten", trainable: true, dtype: "float32", data_format: "channels_last" } },
            dense("dense", 8, "relu"),
            dense("dense_1", 4, "linear"),
          ],
        },
      },
      training_config: {
        loss: {
          module: "keras.losses",
          class_name: "SparseCategoricalCrossentropy",
          config: { reduction: "auto", name: "sparse_categorical_crossentropy", from_logits: true, ignore_class: null },
          registered_name: null,
        },
        metrics: [
          [
            {
              module: "keras.metrics",
              class_name: "MeanMetricWrapper",
              config: { name: "accuracy", dtype: "float32", fn: "sparse_categorical_accuracy" },
            },
          ],
        ],
        weighted_metrics: null,
        loss_weights: null,
        optimizer_config: {
          module: "keras.optimizers",
          class_name: "Adam",
          config: { name: "Adam", learning_rate: 0.001 },
          registered_name: null,
        },
      },
    },
    weightsManifest: [
      {
        paths: ["group1-shard1of1.bin"],
        weights: [
          { name: "dense/kernel", shape: [36, 8], dtype: "float32" },
          { name: "dense/bias", shape: [8], dtype: "float32" },
          { name: "dense_1/kernel", shape: [8, 4], dtype: "float32" },
          { name: "dense_1/bias", shape: [4], dtype: "float32" },
        ],
      },
    ],
  };
}

describe("a Keras 2 model converted by tensorflowjs_converter", () => {
  it("loads with the Keras weight names, and trains with its loss from logits, fused into softmax cross-entropy", async () => {
    const folder = join(dir, "keras");
    await mkdir(folder, { recursive: true });
    const weights = Float32Array.from({ length: 36 * 8 + 8 + 8 * 4 + 4 }, (_, i) => (uniform01(9, i) - 0.5) * 0.4);
    await writeFile(join(folder, "model.json"), JSON.stringify(kerasModelJson()));
    await writeFile(join(folder, "group1-shard1of1.bin"), new Uint8Array(weights.buffer));
    const model = await buildModel(layersSpec(join(folder, "model.json")), DATA);
    expect(model.tensors.map((t) => t.name)).toEqual(["dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"]);
    expect(Array.from(model.parameters())).toEqual(Array.from(weights));
    expect(model.loss).toMatchObject({ name: "sparseCategoricalCrossentropy", fromLogits: true });
    expect(model.plan).toBe("fused");
    // The loss is the mean cross-entropy of softmax(logits), the logits being the model's own output.
    const batch = batchAt(0);
    const loss = model.lossAndGradient(weights, batch, new Float32Array(model.parameterCount));
    const expected = tf.tidy(() => {
      const logits = model.layersModel.predict(tf.tensor(batch.x, [batch.count, 6, 6, 1])) as tf.Tensor2D;
      const picked = tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(tf.tensor1d(batch.labels, "int32"), 4)), 1);
      return -tf.mean(picked).dataSync()[0]!;
    });
    expect(Math.abs(loss - expected)).toBeLessThan(1e-6);
    model.dispose();
  });
});
