/**
 * JSON Merge Patch (RFC 7386, `application/merge-patch+json`): objects merge key by key, null
 * removes a key, anything else (arrays included) replaces the target's value.
 */

import type { JsonValue } from "../../manifests.js";
import { isJsonObject } from "../../manifests.js";

export function applyMergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isJsonObject(patch)) return structuredClone(patch);
  const result = isJsonObject(target) ? structuredClone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}
