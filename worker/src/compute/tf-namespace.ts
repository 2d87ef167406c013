/**
 * The one tf.js a worker runs, as a single namespace: tfjs-core's ops and tfjs-layers'
 * models and layers. A user's module gets this object (registerLayers(tf), loss(tf, ...))
 * instead of importing tf.js itself, so its custom layers register in, and its tensors
 * live on, the same engine and backend as trainfleet's own.
 */
import * as core from "@tensorflow/tfjs-core";
import * as layers from "@tensorflow/tfjs-layers";

export type TfNamespace = typeof core & Omit<typeof layers, "default">;

export const tf: TfNamespace = Object.freeze({ ...core, ...withoutDefault(layers) });

function withoutDefault<T extends object>(namespace: T): Omit<T, "default"> {
  const { default: _, ...rest } = namespace as T & { default?: unknown };
  return rest;
}
