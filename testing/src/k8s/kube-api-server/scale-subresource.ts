/**
 * The /scale subresource of a custom resource: an autoscaling/v1 Scale read from, and written
 * back to, the paths the CRD names (for TrainingJob: spec.replicas <-> .spec.workers.replicas,
 * status.replicas <- .status.replicas, status.selector <- .status.selector). This is what
 * `kubectl scale` and a HorizontalPodAutoscaler talk to.
 */

import type { JsonObject, JsonValue } from "../../manifests.js";
import { isJsonObject } from "../../manifests.js";
import { badRequest, conflict, invalid } from "./api-status.js";
import { metadataOf, nameOf } from "./object-meta.js";
import type { ResourceDefinition, ScalePaths } from "./resource-table.js";

/** The Scale type as a resource, for patch dispatch and messages (a built-in: strategic merge works). */
export const scaleResource: ResourceDefinition = {
  group: "autoscaling",
  version: "v1",
  kind: "Scale",
  listKind: "ScaleList",
  plural: "scales",
  singular: "scale",
  namespaced: true,
  status: false,
  custom: false,
  deleteReturnsObject: false,
};

function keys(path: string): string[] {
  return path.split(".").filter((key) => key !== "");
}

function valueAt(object: JsonObject, path: string): JsonValue | undefined {
  let node: JsonValue | undefined = object;
  for (const key of keys(path)) node = isJsonObject(node) ? node[key] : undefined;
  return node;
}

function setValueAt(object: JsonObject, path: string, value: JsonValue): void {
  const parts = keys(path);
  const last = parts.pop()!;
  let node = object;
  for (const key of parts) {
    const next = node[key];
    node = isJsonObject(next) ? next : (node[key] = {});
  }
  node[last] = value;
}

function scalePaths(resource: ResourceDefinition): ScalePaths {
  if (resource.scale === undefined) throw new Error(`${resource.plural} has no scale subresource`);
  return resource.scale;
}

/** The Scale of `object`; a replica count that is not set reads as 0, as in the real server. */
export function scaleOf(resource: ResourceDefinition, object: JsonObject): JsonObject {
  const paths = scalePaths(resource);
  const metadata = metadataOf(object);
  const scaleMeta: JsonObject = {};
  for (const field of ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"]) {
    const value = metadata[field];
    if (value !== undefined) scaleMeta[field] = value;
  }
  const specReplicas = valueAt(object, paths.specReplicasPath);
  const statusReplicas = valueAt(object, paths.statusReplicasPath);
  const status: JsonObject = { replicas: typeof statusReplicas === "number" ? statusReplicas : 0 };
  const selector = paths.labelSelectorPath === undefined ? undefined : valueAt(object, paths.labelSelectorPath);
  if (typeof selector === "string" && selector !== "") status["selector"] = selector;
  return {
    kind: "Scale",
    apiVersion: "autoscaling/v1",
    metadata: scaleMeta,
    spec: { replicas: typeof specReplicas === "number" ? specReplicas : 0 },
    status,
  };
}

/**
 * `object` with the Scale's spec.replicas written to the spec path, and the Scale's
 * resourceVersion (when given) as a precondition. Only spec.replicas is taken from the Scale.
 */
export function applyScale(resource: ResourceDefinition, object: JsonObject, scale: JsonObject): JsonObject {
  const paths = scalePaths(resource);
  if (scale["kind"] !== undefined && scale["kind"] !== "Scale")
    throw badRequest(`the kind in the data (${String(scale["kind"])}) does not match the expected kind (Scale)`);
  const name = nameOf(object);
  const scaleMeta = isJsonObject(scale["metadata"]) ? scale["metadata"] : {};
  if (scaleMeta["name"] !== undefined && scaleMeta["name"] !== name)
    throw badRequest(`the name of the object (${String(scaleMeta["name"])}) does not match the name on the URL (${name})`);
  const requested = scaleMeta["resourceVersion"];
  if (requested !== undefined && requested !== "" && requested !== metadataOf(object)["resourceVersion"]) throw conflict(resource, name);
  const spec = isJsonObject(scale["spec"]) ? scale["spec"] : {};
  const replicas = spec["replicas"] ?? 0;
  if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0) {
    throw invalid(scaleResource, name, "spec.replicas", `${JSON.stringify(replicas)}: must be greater than or equal to 0`);
  }
  const updated = structuredClone(object);
  setValueAt(updated, paths.specReplicasPath, replicas);
  return updated;
}
