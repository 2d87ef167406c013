/**
 * What buildModel refuses in a user's model, each error checked for what it names; the
 * user module (custom layers, loss); the reasons a model does not train bit-exactly; and
 * the wasm backend's missing kernel found by the build's check.
 */
import { mkdtemp, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Code, Loss, ModelSpecSchema } from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import type { DataShape } from "@trainfleet/spec";
import { uniform01 } from "@trainfleet/spec";
import { type ModelFileServer, startModelFileServer } from "@trainfleet/testing/fixtures/tfjs-saved-model";
import { rejection } from "@trainfleet/testing/rejection";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../src/compute/backend.js";
import type { HostBatch } from "../src/compute/host-batch.js";
import { buildModel } from "../src/compute/model.js";

const DATA: DataShape = { featureShape: [6, 6, 1], classes: 4, labelSize: 0, trainRecords: 64, evalRecords: 16 };
const BATCH: HostBatch = {
  count: 8,
  x: Float32Array.from({ length: 8 * 36 }, (_, i) => uniform01(3, i)),
  labels: Int32Array.from({ length: 8 }, (_, i) => i % 4),
};

let dir: string;
let server: ModelFileServer;
beforeAll(async () => {
  expect((await selectBackend("cpu", silentLogger)).name).toBe("cpu");
  dir = await mkdtemp(join(tmpdir(), "model-refusals-"));
  server = await startModelFileServer(dir);
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const layersSpec = (uri: string, more: { loss?: Loss; module?: string; sha256?: string } = {}) =>
  create(ModelSpecSchema, { kind: { case: "layers", value: { uri, ...more } } });

function mlp(outputs = 4, activation: "softmax" | "linear" = "softmax", inputShape = [6, 6, 1]): tfl.Sequential {
  return tfl.sequential({
    layers: [
      tfl.layers.flatten({ inputShape }),
      tfl.layers.dense({ units: 5, activation: "relu", name: "hidden" }),
      tfl.layers.dense({ units: outputs, activation, name: "out" }),
    ],
  });
}

/** Saves `model` with tf.js's own save (compiled with `loss` and its trainingConfig kept, when given). */
async function saved(name: string, model: tfl.LayersModel, loss?: string): Promise<string> {
  if (loss !== undefined) model.compile({ optimizer: "sgd", loss });
  const path = await server.save(model, name, { includeOptimizer: loss !== undefined });
  model.dispose();
  return path;
}

/** The parts of a saved model.json the tests change. */
interface SavedModelJson {
  modelTopology: { config: { layers: unknown[] } };
  weightsManifest: Array<{ weights: Array<{ dtype: string }> }>;
  trainingConfig: { loss: unknown };
}

async function editJson(path: string, edit: (json: SavedModelJson) => void): Promise<void> {
  const json = JSON.parse(await readFile(path, "utf8")) as SavedModelJson;
  edit(json);
  await writeFile(path, JSON.stringify(json));
}

describe("buildModel refuses", () => {
  it("a GraphModel, saying it is inference-only and how to save a Layers model", async () => {
    const path = join(dir, "graph.json");
    await writeFile(path, JSON.stringify({ format: "graph-model", modelTopology: { node: [] }, weightsManifest: [] }));
    const error = await rejection(buildModel(layersSpec(path), DATA));
    expect(error.message).toContain(`${path} is a tf.js GraphModel; GraphModels are inference-only`);
    expect(error.message).toContain("tfjs_layers_model");
  });

  it("float16 weights, naming the weight", async () => {
    const path = await saved("float16", mlp(), "sparseCategoricalCrossentropy");
    await editJson(path, (json) => {
      json.weightsManifest[0]!.weights[1]!.dtype = "float16";
    });
    const error = await rejection(buildModel(layersSpec(path), DATA));
    expect(error.code).toBe(Code.INVALID_ARGUMENT);
    expect(error.message).toContain("weight hidden/bias is float16");
  });

  it("a model.json whose sha256 is not the one given, showing both", async () => {
    const path = await saved("sha", mlp(), "sparseCategoricalCrossentropy");
    const error = await rejection(buildModel(layersSpec(path, { sha256: "ab".repeat(32) }), DATA));
    expect(error.code).toBe(Code.FAILED_PRECONDITION);
    expect(error.message).toMatch(/sha256 is [0-9a-f]{64}, but spec.model.layers.sha256 expects (ab){32}/);
  });

  it("a missing weight file, naming it", async () => {
    const path = await saved("missing", mlp(), "sparseCategoricalCrossentropy");
    await unlink(join(dir, "missing", "model.weights.bin"));
    const error = await rejection(buildModel(layersSpec(path), DATA));
    expect(error.code).toBe(Code.NOT_FOUND);
    expect(error.message).toContain("names the weight file ./model.weights.bin");
  });

  it("a model with two outputs, for now", async () => {
    const input = tfl.input({ shape: [6, 6, 1] });
    const flat = tfl.layers.flatten().apply(input) as tfl.SymbolicTensor;
    const a = tfl.layers.dense({ units: 4 }).apply(flat) as tfl.SymbolicTensor;
    const b = tfl.layers.dense({ units: 2 }).apply(flat) as tfl.SymbolicTensor;
    const path = await saved("two-outputs", tfl.model({ inputs: input, outputs: [a, b] }));
    const error = await rejection(buildModel(layersSpec(path, { loss: Loss.SPARSE_CATEGORICAL_CROSSENTROPY }), DATA));
    expect(error.code).toBe(Code.FAILED_PRECONDITION);
    expect(error.message).toContain("it has 1 inputs and 2 outputs; trainfleet trains models with one input and one output, for now");
  });

  it("an output that does not fit the classes, and an input that does not fit the features", async () => {
    const three = await saved("three-outputs", mlp(3), "sparseCategoricalCrossentropy");
    const outputError = await rejection(buildModel(layersSpec(three), DATA));
    expect(outputError.message).toContain(
      "its output gives 3 values per sample, but the dataset has 4 classes: give the output layer 4 units",
    );

    const small = await saved("small-input", mlp(4, "softmax", [5, 5, 1]), "sparseCategoricalCrossentropy");
    const inputError = await rejection(buildModel(layersSpec(small), DATA));
    expect(inputError.message).toContain("its input takes [5, 5, 1] per sample, but the dataset's features have shape [6, 6, 1]");
  });

  it("a model without a loss, and a loss trainfleet does not know, saying where to give one", async () => {
    const none = await saved("no-loss", mlp());
    expect((await rejection(buildModel(layersSpec(none), DATA))).message).toContain("has no loss: give spec.model.layers.loss");

    const huber = await saved("huber", mlp(), "sparseCategoricalCrossentropy");
    await editJson(huber, (json) => {
      json.trainingConfig.loss = "huber_loss";
    });
    const error = await rejection(buildModel(layersSpec(huber), DATA));
    expect(error.message).toContain('the loss "huber_loss" of its trainingConfig is not one trainfleet knows');
    expect(error.message).toContain("spec.model.layers.module");
  });

  it("a linear output given a loss that expects probabilities, naming the layer", async () => {
    const path = await saved("linear", mlp(4, "linear"));
    const error = await rejection(buildModel(layersSpec(path, { loss: Loss.SPARSE_CATEGORICAL_CROSSENTROPY }), DATA));
    expect(error.message).toContain("its output layer out is linear (logits), but the loss sparseCategoricalCrossentropy");
    expect(error.message).toContain("activation 'softmax'");
  });
});

describe("a user module", () => {
  const module = `
export function registerLayers(tf) {
  class Doubler extends tf.layers.Layer {
    static className = "Doubler";
    computeOutputShape(inputShape) { return inputShape; }
    call(inputs) { return tf.tidy(() => tf.mul(Array.isArray(inputs) ? inputs[0] : inputs, 2)); }
  }
  tf.serialization.registerClass(Doubler);
}
export function loss(tf, labels, predictions) {
  return tf.mean(tf.square(tf.sub(predictions, tf.oneHot(labels, 4))));
}
`;

  it("is needed for an unknown layer class, and registers it", async () => {
    const path = await saved("custom", mlp(4, "linear"));
    await editJson(path, (json) => {
      json.modelTopology.config.layers.splice(2, 0, { class_name: "Doubler", config: { name: "doubler_1", trainable: true } });
    });
    const error = await rejection(buildModel(layersSpec(path, { loss: Loss.MEAN_SQUARED_ERROR }), DATA));
    expect(error.code).toBe(Code.FAILED_PRECONDITION);
    expect(error.message).toContain("layer doubler_1 is of class Doubler, which tf.js does not know");
    expect(error.message).toContain("give spec.model.layers.module that registers it");

    const modulePath = join(dir, "doubler.mjs");
    await writeFile(modulePath, module);
    const withModule = await buildModel(layersSpec(path, { module: modulePath }), DATA);
    expect(withModule.loss.name).toBe("module");
    expect(withModule.tfjsGradientLayers).toEqual(["doubler_1"]);
    // The module's loss is a mean squared error on one-hot labels: the spec's MEAN_SQUARED_ERROR gives the same gradient.
    const withSpecLoss = await buildModel(layersSpec(path, { module: modulePath, loss: Loss.MEAN_SQUARED_ERROR }), DATA);
    expect(withSpecLoss.loss.name).toBe("meanSquaredError");
    const params = withModule.parameters();
    const a = new Float32Array(withModule.parameterCount);
    const b = new Float32Array(withModule.parameterCount);
    const lossA = withModule.lossAndGradient(params, BATCH, a);
    const lossB = withSpecLoss.lossAndGradient(params, BATCH, b);
    // Equal to float32 rounding (the two losses sum in different orders): a few ulps of the largest value, relative.
    const largest = Math.max(...a.map(Math.abs));
    expect(largest).toBeGreaterThan(0);
    expect(Math.abs(lossA - lossB)).toBeLessThan(1e-6 * Math.abs(lossA));
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]!)))).toBeLessThan(1e-6 * largest);
    withModule.dispose();
    withSpecLoss.dispose();
  });

  it("comes from a local path, never a URL", async () => {
    const path = await saved("url-module", mlp(), "sparseCategoricalCrossentropy");
    const error = await rejection(buildModel(layersSpec(path, { module: "https://example.com/layers.mjs" }), DATA));
    expect(error.field).toBe("spec.model.layers.module");
    expect(error.message).toContain("is a URL");
  });
});

describe("a model that trains with randomness or batch statistics", () => {
  it("says which layers keep it from being bit-exact and why, and the check leaves its statistics alone", async () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.flatten({ inputShape: [6, 6, 1] }),
        tfl.layers.dense({ units: 8, activation: "relu" }),
        tfl.layers.batchNormalization({ name: "norm" }),
        tfl.layers.dropout({ rate: 0.5, name: "drop" }),
        tfl.layers.dense({ units: 4, activation: "softmax" }),
      ],
    });
    const path = await saved("not-exact", model, "sparseCategoricalCrossentropy");
    const built = await buildModel(layersSpec(path), DATA);
    expect(built.notExact).toHaveLength(2);
    expect(built.notExact[0]).toContain("layer norm (BatchNormalization) normalises with the statistics of each worker's slice");
    expect(built.notExact[1]).toContain("layer drop (Dropout) draws random noise while training");
    expect(built.plan).toBe("tfjs-gradients");
    expect(built.tfjsGradientLayers).toEqual(["norm", "drop"]);
    // The buffers follow the trainable tensors in the layout.
    const buffers = built.tensors.filter((t) => !t.trainable);
    expect(buffers.map((t) => [t.name, t.offset])).toEqual([
      ["norm/moving_mean", built.trainableCount],
      ["norm/moving_variance", built.trainableCount + 8],
    ]);
    expect(built.parameterCount).toBe(built.trainableCount + 16);
    // Moving mean 0, variance 1, as saved: the build's check ran in training mode and put them back.
    const params = built.parameters();
    expect(Array.from(params.subarray(built.trainableCount))).toEqual([...new Array(8).fill(0), ...new Array(8).fill(1)]);
    // A training step gives, after the gradient, the buffers as its forward pass moved them:
    // moving = moving * momentum + batch statistic * (1 - momentum), tf.js's default momentum 0.99, so
    // from mean 0 the output is 0.01 x the batch mean.
    const out = new Float32Array(built.parameterCount);
    built.lossAndGradient(params, BATCH, out);
    const mean = out.subarray(built.trainableCount, built.trainableCount + 8);
    const variance = out.subarray(built.trainableCount + 8);
    expect(mean.some((v) => v !== 0)).toBe(true);
    expect(variance.every((v) => v > 0 && v !== 1)).toBe(true);
    // The buffers are the parameters given, not what the model held: another starting point moves from there.
    const shifted = params.slice();
    shifted.fill(5, built.trainableCount, built.trainableCount + 8);
    const out2 = new Float32Array(built.parameterCount);
    built.lossAndGradient(shifted, BATCH, out2);
    for (let i = 0; i < 8; i++) expect(out2[built.trainableCount + i]).toBeCloseTo(5 * 0.99 + mean[i]!, 4);
    // ...and evaluation normalises with the buffers given.
    const evaluated = built.evaluate(params, BATCH);
    const evaluatedShifted = built.evaluate(shifted, BATCH);
    expect(evaluatedShifted.lossSum).not.toBe(evaluated.lossSum);
    built.dispose();
  });
});

describe("on the wasm backend", () => {
  beforeAll(async () => {
    expect((await selectBackend("wasm", silentLogger)).name).toBe("wasm");
  });
  afterAll(async () => {
    await selectBackend("cpu", silentLogger);
  });

  const conv = (strides: number, name: string) =>
    tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [6, 6, 1], filters: 2, kernelSize: 3, strides, padding: "valid", activation: "relu", name }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 4, activation: "softmax" }),
      ],
    });

  it("a strided Conv2D is refused naming the kernel wasm lacks, the layer and the fix", async () => {
    const path = await saved("strided", conv(2, "strided_conv"), "sparseCategoricalCrossentropy");
    const before = tf.memory().numTensors;
    const error = await rejection(buildModel(layersSpec(path), DATA));
    expect(error.code).toBe(Code.FAILED_PRECONDITION);
    expect(error.message).toContain(
      "its layer strided_conv (Conv2D) needs the kernel Conv2DBackpropFilter to train, which the wasm backend lacks",
    );
    expect(error.message).toContain("strides 1");
    expect(error.message).toContain("cpu or tensorflow backend");
    // The check's stand-in kernels are gone, and the refused model with them.
    expect(tf.getKernel("Conv2DBackpropFilter", "wasm")).toBeUndefined();
    expect(tf.memory().numTensors).toBe(before);
  });

  it("a stride-1 'valid' Conv2D trains through trainfleet's own filter gradient", async () => {
    const path = await saved("valid-conv", conv(1, "valid_conv"), "sparseCategoricalCrossentropy");
    const model = await buildModel(layersSpec(path), DATA);
    expect(model.plan).toBe("fused");
    const gradient = new Float32Array(model.parameterCount);
    expect(Number.isFinite(model.lossAndGradient(model.parameters(), BATCH, gradient))).toBe(true);
    expect(gradient.some((v) => v !== 0)).toBe(true);
    model.dispose();
  });
});
