/**
 * A LayersModel's weights as flat vectors: where each weight lies (its slot), reading them
 * out, and which initializer its layer names for it. Names are the weights' original names,
 * the ones model.json's weightsManifest uses (tf.js may suffix a variable's own name when
 * two models in a process share layer names).
 */
import type * as tfl from "@tensorflow/tfjs-layers";

export interface ModelTensorSlot {
  /** The weight's name as model.json's weightsManifest names it, e.g. "dense0/kernel". */
  name: string;
  shape: number[];
  offset: number;
  size: number;
  /** The class of the initializer its layer names for it (GlorotUniform, Zeros, Ones, ...), when it names one. */
  initializer: string | undefined;
  /** false: a buffer (a non-trainable weight such as BatchNormalization's moving mean), which follows rank 0. */
  trainable: boolean;
}

/**
 * The layers that hold weights, nested models opened up. (A Sequential's own
 * calculateLosses() sees none of its layers' penalties until fit() builds its inner model.)
 */
export function leafLayers(layers: tfl.layers.Layer[]): tfl.layers.Layer[] {
  return layers.flatMap((layer) => {
    const nested = (layer as { layers?: tfl.layers.Layer[] }).layers;
    return Array.isArray(nested) ? leafLayers(nested) : [layer];
  });
}

/** Slots of `weights` laid end to end; the first `trainable` of them are trainable, the rest buffers. */
export function slots(weights: tfl.LayerVariable[], trainable: number, model: tfl.LayersModel): ModelTensorSlot[] {
  const owners = new Map(leafLayers(model.layers).flatMap((layer) => layer.weights.map((weight) => [weight, layer] as const)));
  let offset = 0;
  return weights.map((weight, i) => {
    const shape = weight.shape.map((d) => d as number);
    const size = shape.reduce((a, b) => a * b, 1);
    const initializer = initializerOf(weight, owners.get(weight));
    const slot = { name: weight.originalName, shape, offset, size, initializer, trainable: i < trainable };
    offset += size;
    return slot;
  });
}

/** A weight "dense/kernel" is initialised by its layer's kernelInitializer; "norm/moving_mean" by movingMeanInitializer. */
function initializerOf(weight: tfl.LayerVariable, layer: tfl.layers.Layer | undefined): string | undefined {
  const own = weight.originalName.split("/").at(-1) ?? "";
  const key = `${own.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())}Initializer`;
  const config = layer?.getConfig()[key] as { className?: unknown } | undefined;
  return typeof config?.className === "string" ? config.className : undefined;
}

export function flatten(weights: tfl.LayerVariable[], total: number): Float32Array {
  const out = new Float32Array(total);
  let offset = 0;
  for (const weight of weights) {
    const values = weight.read().dataSync() as Float32Array;
    out.set(values, offset);
    offset += values.length;
  }
  return out;
}
