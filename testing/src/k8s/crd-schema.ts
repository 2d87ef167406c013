/**
 * The TrainingJob CRD (k8s/crd.yaml) and its openAPIV3Schema, with the walks the tests share.
 * A schema node is the JSON of one Kubernetes JSONSchemaProps.
 */

import type { JsonObject, JsonValue } from "../manifests.js";
import { isJsonObject, readManifest, repoPath } from "../manifests.js";

export const crdPath = repoPath("k8s", "crd.yaml");
export const chartCrdPath = repoPath("helm", "trainfleet", "crds", "trainingjobs.trainfleet.dev.yaml");

export type SchemaNode = JsonObject;

export function loadCrd(): JsonObject {
  return readManifest(crdPath);
}

/** The openAPIV3Schema of the CRD's only version. */
export function trainingJobSchema(crd: JsonObject = loadCrd()): SchemaNode {
  const spec = objectAt(crd, "spec");
  const versions = spec["versions"];
  if (!Array.isArray(versions) || versions.length !== 1) throw new Error("the CRD must have exactly one version");
  return objectAt(objectAt(asObject(versions[0], "spec.versions[0]"), "schema"), "openAPIV3Schema");
}

export function asObject(value: JsonValue | undefined, what: string): JsonObject {
  if (!isJsonObject(value)) throw new Error(`${what} is not an object`);
  return value;
}

export function objectAt(object: JsonObject, key: string): JsonObject {
  return asObject(object[key], key);
}

/** The schema of the property at a dotted path from `node` (`spec.workers.replicas`), or undefined. */
export function propertyNode(node: SchemaNode, path: string): SchemaNode | undefined {
  let current: SchemaNode | undefined = node;
  for (const key of path.split(".").filter((part) => part !== "")) {
    const properties: JsonValue | undefined = current?.["properties"];
    if (!isJsonObject(properties)) return undefined;
    const next: JsonValue | undefined = properties[key];
    current = isJsonObject(next) ? next : undefined;
  }
  return current;
}

/** Where a node sits: reached by a property, as array items, or as a map's values. */
export type SchemaEdge = "property" | "items" | "additionalProperties";

export interface SchemaVisit {
  /** Dotted path of properties; `[]` marks array items and `{}` map values (`spec.a[].b`). */
  path: string;
  node: SchemaNode;
  edge: SchemaEdge | "root";
}

/** The structural nodes of a schema (root, properties, items, additionalProperties), parents first. */
export function* schemaNodes(root: SchemaNode): Generator<SchemaVisit> {
  const pending: SchemaVisit[] = [{ path: "", node: root, edge: "root" }];
  for (let visit = pending.shift(); visit !== undefined; visit = pending.shift()) {
    yield visit;
    const { path, node } = visit;
    const properties = node["properties"];
    if (isJsonObject(properties)) {
      for (const [key, child] of Object.entries(properties)) {
        if (isJsonObject(child)) pending.push({ path: path === "" ? key : `${path}.${key}`, node: child, edge: "property" });
      }
    }
    const items = node["items"];
    if (isJsonObject(items)) pending.push({ path: `${path}[]`, node: items, edge: "items" });
    const additional = node["additionalProperties"];
    if (isJsonObject(additional)) pending.push({ path: `${path}{}`, node: additional, edge: "additionalProperties" });
  }
}

/**
 * Paths of the fields under `prefix` that hold a value rather than named sub-fields: scalars,
 * arrays, maps and free-form objects (`spec.workers.replicas`, `spec.model.mlp.hiddenUnits`).
 */
export function leafFieldPaths(root: SchemaNode, prefix: string): string[] {
  const leaves: string[] = [];
  for (const { path, node, edge } of schemaNodes(root)) {
    if (edge !== "property" || !path.startsWith(`${prefix}.`) || path.includes("[]") || path.includes("{}")) continue;
    if (!isJsonObject(node["properties"])) leaves.push(path);
  }
  return leaves;
}

/** Paths of every named field under `prefix`, objects included. */
export function fieldPaths(root: SchemaNode, prefix: string): string[] {
  const paths: string[] = [];
  for (const { path, edge } of schemaNodes(root)) {
    if (edge === "property" && path.startsWith(`${prefix}.`) && !path.includes("[]") && !path.includes("{}")) paths.push(path);
  }
  return paths;
}
