/**
 * What `trainfleet model inspect` prints and what a job pins into its spec: a model
 * built on the active backend and put through one forward and backward pass on two
 * samples (buildModel's check), then described: its parameter layout with a digest, how
 * it trains (hand-written blocks or tf.js's gradients, which loss), and what keeps its
 * training from being bit-exact.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import * as tf from "@tensorflow/tfjs-core";
import { sha256Hex } from "@trainfleet/artifacts";
import type { ModelArtifactSchema, ModelSpec } from "@trainfleet/proto";
import type { DataShape } from "@trainfleet/spec";
import type { BuildModelOptions } from "./model.js";
import { buildModel } from "./model.js";

export interface ModelInspection {
  /** The trainable tensors, then the buffers (trainable false): the parameter layout. */
  tensors: Array<{ name: string; shape: number[]; trainable: boolean }>;
  /**
   * Per tensor, the class of the initializer the model names for it (GlorotUniform, Zeros,
   * Ones, ...): what seeded initial parameters should follow when the artifact has no weights.
   */
  initializers: Array<string | undefined>;
  parameterCount: number;
  /** Elements trained by the optimizer; the rest of parameterCount are buffers, which follow rank 0. */
  trainableCount: number;
  /** sha256 (hex) over the tensors' names and shapes, in order. */
  layoutDigest: string;
  inputShape: number[];
  outputShape: number[];
  plan: "fused" | "tfjs-gradients";
  /** The layers that run through tf.js's registered gradients (none when the plan is fused). */
  tfjsGradientLayers: string[];
  /** The loss and where it came from, e.g. "sparseCategoricalCrossentropy (from the model's trainingConfig)". */
  loss: string;
  notExact: string[];
  /** The backend the check ran on. */
  backend: string;
  /** A Layers model's artifact as found (spec.model.layers.artifact); undefined for the presets. */
  artifact: MessageInitShape<typeof ModelArtifactSchema> | undefined;
}

export async function inspectModel(spec: ModelSpec, data: DataShape, options: BuildModelOptions = {}): Promise<ModelInspection> {
  const model = await buildModel(spec, data, options);
  try {
    const tensors = model.tensors.map(({ name, shape, trainable }) => ({ name, shape, trainable }));
    const pinned = (trainable: boolean) =>
      model.tensors
        .filter((tensor) => tensor.trainable === trainable)
        .map(({ name, shape, initializer }) => ({ name, shape, initializer: seededInitializer(initializer, shape) }));
    const { loss } = model;
    return {
      tensors,
      initializers: model.tensors.map((t) => t.initializer),
      parameterCount: model.parameterCount,
      trainableCount: model.trainableCount,
      layoutDigest: layoutDigest(tensors),
      inputShape: model.inputShape,
      outputShape: model.outputShape,
      plan: model.plan,
      tfjsGradientLayers: model.tfjsGradientLayers,
      loss: `${loss.name}${loss.fromLogits ? " from logits" : ""} (from ${loss.source})`,
      notExact: model.notExact,
      backend: tf.getBackend(),
      artifact:
        model.artifact === undefined
          ? undefined
          : {
              digest: model.artifact.digest,
              tensors: pinned(true),
              buffers: pinned(false),
              hasWeights: model.artifact.weightSpecs.some((weight) => weight.group !== "optimizer"),
              inputShape: model.inputShape,
              outputShape: model.outputShape,
              notExact: model.notExact,
            },
    };
  } finally {
    model.dispose();
  }
}

/** sha256 over each tensor's name and shape, in layout order. */
export function layoutDigest(tensors: Array<{ name: string; shape: number[] }>): string {
  return sha256Hex(new TextEncoder().encode(JSON.stringify(tensors.map(({ name, shape }) => [name, shape]))));
}

/**
 * How spec's seeded initialisation starts a tensor the artifact has no weights for: zeros
 * and ones as the layer names them, any other initializer (Glorot, He, ...) as seeded
 * Glorot-uniform, the same on every rank; vectors without one (biases) at zero.
 */
function seededInitializer(layerInitializer: string | undefined, shape: number[]): string {
  if (layerInitializer === "Zeros" || layerInitializer === "Ones") return layerInitializer.toLowerCase();
  if (layerInitializer === undefined && shape.length < 2) return "zeros";
  return "glorot-uniform";
}
