/**
 * A user's Layers model (spec.model.layers), from its model.json and weight files to a
 * tf.js LayersModel: the user's module registers its custom layers first, the artifact's
 * bytes go to tfjs-layers through tf.io.fromMemory (no file system or fetch of tf.js's
 * own, so no tfjs-node), and what tf.js cannot build is refused naming the layer.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import type { LayersArtifact, SourceOptions } from "@trainfleet/artifacts";
import { readLayersArtifact, redactUri } from "@trainfleet/artifacts";
import type { LayersModelSpec } from "@trainfleet/proto";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { tf as tfNamespace } from "./tf-namespace.js";
import type { UserModelModule } from "./user-module.js";
import { loadUserModule } from "./user-module.js";

export interface LoadedLayersModel {
  model: tfl.LayersModel;
  artifact: LayersArtifact;
  module: UserModelModule | undefined;
}

export interface LoadOptions {
  sources?: SourceOptions | undefined;
  signal?: AbortSignal | undefined;
}

export async function loadUserLayersModel(spec: LayersModelSpec, options: LoadOptions = {}): Promise<LoadedLayersModel> {
  if (spec.uri === "") {
    throw new TrainfleetError(Code.INVALID_ARGUMENT, "spec.model.layers.uri: give the model.json to train (a path or a URL)", {
      field: "spec.model.layers.uri",
    });
  }
  // Messages name the model without credentials a URL may carry.
  const shown = redactUri(spec.uri);
  const module = spec.module === "" ? undefined : await loadUserModule(spec.module);
  await module?.registerLayers?.(tfNamespace);
  const artifact = await readLayersArtifact(spec.uri, { sha256: spec.sha256, sources: options.sources, signal: options.signal });
  const pinned = spec.artifact?.digest ?? "";
  if (pinned !== "" && pinned !== artifact.digest) {
    throw new TrainfleetError(
      Code.FAILED_PRECONDITION,
      `spec.model.layers: the model ${shown} changed since the job was pinned to it (sha256 ${pinned.slice(0, 12)}..., ` +
        `now ${artifact.digest.slice(0, 12)}...): a job trains only the files it started with; restore them, or start a new job`,
      { field: "spec.model.layers" },
    );
  }
  refuseUnknownLayers(artifact.modelTopology, shown, spec.module !== "");
  const weightData = artifact.weightData?.slice().buffer;
  // The trainingConfig stays out: tf.js would compile the model with it and fail on a
  // loss it does not know; trainfleet reads the loss itself (losses.ts).
  const handler = tf.io.fromMemory({
    modelTopology: artifact.modelJson.modelTopology as object,
    ...(weightData === undefined ? {} : { weightSpecs: artifact.weightSpecs, weightData }),
  });
  try {
    const model = await tfl.loadLayersModel(handler, { strict: true });
    return { model, artifact, module };
  } catch (error) {
    throw new TrainfleetError(
      Code.INVALID_ARGUMENT,
      `${shown}: tf.js could not build the model from it: ${error instanceof Error ? error.message : String(error)}`,
      { field: "spec.model.layers.uri", cause: error },
    );
  }
}

/** Containers whose config lists layers of their own. */
const containers = new Set(["Sequential", "Model", "Functional"]);

/**
 * Every layer class the topology names must be registered with tf.js (its own layers are,
 * on import); checked before tf.js deserializes, to name the class, the layer and the fix.
 */
function refuseUnknownLayers(topology: Record<string, unknown>, uri: string, hasModule: boolean): void {
  const known = tf.serialization.SerializationMap.getMap().classNameMap;
  const visit = (entry: Record<string, unknown>) => {
    const className = entry.class_name;
    if (typeof className !== "string") return;
    const config = entry.config;
    if (containers.has(className)) {
      // Sequential's config is {name, layers} (or, saved by old Keras, the list itself).
      const layers = Array.isArray(config) ? config : (config as Record<string, unknown> | undefined)?.layers;
      if (Array.isArray(layers)) for (const layer of layers) visit(layer as Record<string, unknown>);
      return;
    }
    if (known[className] !== undefined) return;
    const name = (config as Record<string, unknown> | undefined)?.name ?? entry.name ?? "?";
    throw new TrainfleetError(
      Code.FAILED_PRECONDITION,
      `${uri}: layer ${String(name)} is of class ${className}, which tf.js does not know: ` +
        (hasModule
          ? "the module spec.model.layers.module must register it (registerLayers(tf) calling tf.serialization.registerClass)"
          : "give spec.model.layers.module that registers it (export registerLayers(tf) calling tf.serialization.registerClass)"),
      { field: "spec.model.layers.module" },
    );
  };
  visit(topology);
}
