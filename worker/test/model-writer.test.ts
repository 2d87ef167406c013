/**
 * The trained model written as model.json + weights.bin, loaded back by stock
 * tf.loadLayersModel over a real HTTP server: same weights, same predictions.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { ModelSpecSchema } from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import type { DataShape } from "@trainfleet/spec";
import { uniform01 } from "@trainfleet/spec";
import { type ModelFileServer, startModelFileServer } from "@trainfleet/testing/fixtures/tfjs-saved-model";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../src/compute/backend.js";
import type { HostBatch } from "../src/compute/host-batch.js";
import type { Model } from "../src/compute/model.js";
import { buildModel } from "../src/compute/model.js";
import { writeTrainedModel } from "../src/compute/trained-model-writer.js";

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
  dir = await mkdtemp(join(tmpdir(), "model-writer-"));
  server = await startModelFileServer(dir);
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

/** A few SGD steps, so the parameters differ from what the model started with; the buffers as one rank's forward passes leave them. */
function trained(model: Model): Float32Array {
  const params = model.parameters();
  const gradient = new Float32Array(model.parameterCount);
  for (let step = 0; step < 3; step++) {
    model.lossAndGradient(params, BATCH, gradient);
    for (let i = 0; i < model.trainableCount; i++) params[i] = params[i]! - 0.5 * gradient[i]!;
    params.set(gradient.subarray(model.trainableCount), model.trainableCount);
  }
  return params;
}

async function writtenAndLoaded(model: Model, name: string): Promise<{ params: Float32Array; loaded: tfl.LayersModel; files: string[] }> {
  const params = trained(model);
  const files = await writeTrainedModel(model, params, join(dir, name));
  const loaded = await tfl.loadLayersModel(`${server.url}/${name}/model.json`);
  return { params, loaded, files };
}

function predictions(model: tfl.LayersModel): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor(BATCH.x, [BATCH.count, 6, 6, 1])) as tf.Tensor).dataSync() as Float32Array);
}

function flat(weights: tfl.LayerVariable[]): Float32Array {
  return Float32Array.from(weights.flatMap((w) => Array.from(w.read().dataSync())));
}

describe("writeTrainedModel", () => {
  it("writes a user's model that stock tf.loadLayersModel loads over http, with the trained weights and the same predictions", async () => {
    const original = tfl.sequential({
      layers: [
        tfl.layers.flatten({ inputShape: [6, 6, 1] }),
        tfl.layers.dense({ units: 8, activation: "relu" }),
        tfl.layers.batchNormalization({ name: "norm" }),
        tfl.layers.dense({ units: 4, activation: "softmax" }),
      ],
    });
    original.compile({ optimizer: "sgd", loss: "sparseCategoricalCrossentropy" });
    const path = await server.save(original, "user", { includeOptimizer: true });
    original.dispose();
    const model = await buildModel(create(ModelSpecSchema, { kind: { case: "layers", value: { uri: path } } }), DATA);
    const { params, loaded, files } = await writtenAndLoaded(model, "user-trained");

    expect(files).toEqual([join(dir, "user-trained", "model.json"), join(dir, "user-trained", "weights.bin")]);
    expect((await readdir(join(dir, "user-trained"))).sort()).toEqual(["model.json", "weights.bin"]);
    expect(Array.from(flat(loaded.trainableWeights))).toEqual(Array.from(params.subarray(0, model.trainableCount)));
    // BatchNormalization's moving statistics are the buffers of the parameters written, moved by training.
    expect(model.trainableCount).toBeLessThan(model.parameterCount);
    expect(Array.from(flat(loaded.nonTrainableWeights))).toEqual(Array.from(params.subarray(model.trainableCount)));
    expect(Array.from(params.subarray(model.trainableCount, model.trainableCount + 8)).some((v) => v !== 0)).toBe(true);
    expect(Array.from(predictions(loaded))).toEqual(Array.from(predictions(model.layersModel)));
    // The loss the user compiled with goes along (tf.js writes it in Keras spelling).
    const json = JSON.parse(await readFile(files[0]!, "utf8")) as { trainingConfig?: { loss?: string } };
    expect(json.trainingConfig?.loss).toBe("sparse_categorical_crossentropy");
    loaded.dispose();
    model.dispose();
  });

  it("writes a built-in preset as a Layers model too, its tensors named as the layout names them", async () => {
    const model = await buildModel(
      create(ModelSpecSchema, { kind: { case: "cnn", value: { convFilters: [2], kernelSize: 3, denseUnits: 5 } } }),
      DATA,
    );
    const { params, loaded } = await writtenAndLoaded(model, "preset-trained");
    expect(loaded.trainableWeights.map((w) => w.originalName)).toEqual([
      "conv0/kernel",
      "conv0/bias",
      "dense0/kernel",
      "dense0/bias",
      "output/kernel",
      "output/bias",
    ]);
    expect(Array.from(flat(loaded.trainableWeights))).toEqual(Array.from(params));
    expect(Array.from(predictions(loaded))).toEqual(Array.from(predictions(model.layersModel)));
    loaded.dispose();
    model.dispose();
  });
});
