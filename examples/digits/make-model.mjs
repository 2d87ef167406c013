// A user's model, made and saved with tf.js alone: a small CNN for 8x8 digit images.
// `node examples/digits/make-model.mjs FOLDER` writes FOLDER/model.json and its weights,
// which `trainfleet run --model-json FOLDER/model.json` trains (fine-tuning from these weights).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";

const folder = process.argv[2] ?? "digits-model";
const model = tfl.sequential({
  layers: [
    tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 16, kernelSize: 3, padding: "same", activation: "relu" }),
    tfl.layers.maxPooling2d({ poolSize: 2 }),
    tfl.layers.flatten(),
    tfl.layers.dense({ units: 32, activation: "relu" }),
    tfl.layers.dense({ units: 10, activation: "softmax" }),
  ],
});
// The loss travels in model.json only with the optimizer's config (includeOptimizer below).
model.compile({ optimizer: "adam", loss: "sparseCategoricalCrossentropy" });

// What tf.io's file:// handler (tfjs-node) writes, without needing tfjs-node.
mkdirSync(folder, { recursive: true });
await model.save(
  tf.io.withSaveHandler(async (artifacts) => {
    writeFileSync(join(folder, "weights.bin"), Buffer.from(artifacts.weightData));
    const { weightData, weightSpecs, ...rest } = artifacts;
    writeFileSync(
      join(folder, "model.json"),
      JSON.stringify({ ...rest, weightsManifest: [{ paths: ["weights.bin"], weights: weightSpecs }] }),
    );
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
  }),
  { includeOptimizer: true },
);
console.log(`wrote ${join(folder, "model.json")} and ${join(folder, "weights.bin")}`);
