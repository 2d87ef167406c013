/**
 * Kubernetes manifests as plain JSON values. YAML is read as YAML 1.1, the dialect of the
 * go-yaml that kubectl, the API server and Helm use, so that a scalar like `1e-7` or `on` means
 * here what it means to them.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { JsonObject } from "@trainfleet/k8s/resource";

import { isJsonObject } from "@trainfleet/k8s/resource";
import { parseAllDocuments } from "yaml";

export type { JsonObject, JsonValue } from "@trainfleet/k8s/resource";
export { isJsonObject, valueAt } from "@trainfleet/k8s/resource";

/** The repository root (testing/src/ and test/dist/ are both two folders below it). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export function repoPath(...parts: string[]): string {
  return join(repoRoot, ...parts);
}

/** Every non-empty document of a YAML stream; throws on the first syntax error or warning. */
export function parseManifests(text: string, source: string): JsonObject[] {
  const objects: JsonObject[] = [];
  for (const document of parseAllDocuments(text, { version: "1.1", uniqueKeys: true })) {
    const problem = document.errors[0] ?? document.warnings[0];
    if (problem !== undefined) throw new Error(`${source}: ${problem.message}`);
    const value: unknown = document.toJS({ maxAliasCount: 0 });
    if (value === null || value === undefined) continue;
    if (!isJsonObject(value)) throw new Error(`${source}: a document is not a mapping`);
    objects.push(value);
  }
  return objects;
}

export function readManifests(path: string): JsonObject[] {
  return parseManifests(readFileSync(path, "utf8"), path);
}

/** The one document of a YAML file. */
export function readManifest(path: string): JsonObject {
  const [object, ...rest] = readManifests(path);
  if (object === undefined || rest.length > 0) throw new Error(`${path}: expected exactly one document`);
  return object;
}
