/**
 * The trained model as stock tf.js reads it: model.json (the Layers topology, and the
 * user's trainingConfig when the artifact had one) and weights.bin, which
 * `tf.loadLayersModel` loads. Written beside parameters.f32 when a job ends. Each file
 * goes to a temporary name first and is renamed into place, model.json last, so a reader
 * never finds a model.json whose weights are not all there.
 */
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { isKnownLoss } from "./losses.js";
import type { Model } from "./model.js";

export const trainedModelFiles = { modelJson: "model.json", weights: "weights.bin" } as const;

/** Sets `params` as the model's trainable weights and writes it into `dir`; returns the paths written. */
export async function writeTrainedModel(model: Model, params: Float32Array, dir: string): Promise<string[]> {
  model.setParameters(params);
  let saved: tf.io.ModelArtifacts | undefined;
  await model.layersModel.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  const artifacts = saved!;
  const weights = new Uint8Array(
    artifacts.weightData === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(artifacts.weightData),
  );
  // The user's trainingConfig goes along when stock tf.js can load it back (it compiles the model with it).
  const userConfig = model.artifact?.modelJson.trainingConfig as { loss?: unknown } | undefined;
  const trainingConfig = artifacts.trainingConfig ?? (isKnownLoss(userConfig?.loss) ? userConfig : undefined);
  const modelJson = {
    modelTopology: artifacts.modelTopology,
    format: "layers-model",
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: [trainedModelFiles.weights], weights: artifacts.weightSpecs ?? [] }],
    ...(trainingConfig === undefined ? {} : { trainingConfig }),
  };
  await mkdir(dir, { recursive: true });
  const weightsPath = join(dir, trainedModelFiles.weights);
  const modelJsonPath = join(dir, trainedModelFiles.modelJson);
  await writeThenRename(weightsPath, weights);
  await writeThenRename(modelJsonPath, new TextEncoder().encode(JSON.stringify(modelJson)));
  return [modelJsonPath, weightsPath];
}

async function writeThenRename(path: string, bytes: Uint8Array): Promise<void> {
  const partial = `${path}.partial`;
  await writeFile(partial, bytes);
  await rename(partial, path);
}
