/**
 * PATCH bodies by their Content-Type, as the real server dispatches them. The type must be set
 * explicitly: client-node's generated `patch*` calls default to JSON Patch.
 *
 * Strategic merge patch is applied with JSON merge patch semantics: lists are replaced whole
 * (not merged by their patchMergeKey) and `$patch`/`$setElementOrder` directives are not
 * understood. That is enough for patches that set maps and scalars. Like the real server, it is
 * refused (415) for custom resources. Server-side apply (`application/apply-patch+yaml`) is not
 * supported (415).
 */
import type { JsonObject, JsonValue } from "../../manifests.js";
import { isJsonObject } from "../../manifests.js";
import { ApiStatusError, badRequest, unsupportedMediaType } from "./api-status.js";
import { applyJsonPatch, MalformedPatchError, PatchConflictError } from "./json-patch.js";
import { parseJsonObject } from "./json-value.js";
import { applyMergePatch } from "./merge-patch.js";
import type { ResourceDefinition } from "./resource-table.js";

export const jsonPatch = "application/json-patch+json";
export const mergePatch = "application/merge-patch+json";
export const strategicMergePatch = "application/strategic-merge-patch+json";

/** The patch types the real server accepts for `resource` (the ones listed in its 415 message). */
function acceptedTypes(resource: ResourceDefinition): string[] {
  const types = [jsonPatch, mergePatch, "application/apply-patch+yaml"];
  return resource.custom ? types : [...types, strategicMergePatch];
}

/** The Content-Type's media type, without parameters such as charset. */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? "").split(";")[0]!.trim().toLowerCase();
}

/** `current` with the PATCH body applied: 415 for other types, 400 for a malformed body, 422 when it does not apply. */
export function applyPatch(resource: ResourceDefinition, current: JsonObject, contentType: string | undefined, body: string): JsonObject {
  const type = mediaType(contentType);
  const supported = type === jsonPatch || type === mergePatch || (type === strategicMergePatch && !resource.custom);
  if (!supported) throw unsupportedMediaType(type, acceptedTypes(resource));
  const patch = parseJsonObject(body);
  if (patch === undefined) throw badRequest(`error decoding patch: the body is not JSON`);
  let patched: JsonValue;
  try {
    patched = type === jsonPatch ? applyJsonPatch(current, patch) : applyMergePatch(current, patch);
  } catch (error) {
    if (error instanceof MalformedPatchError) throw badRequest(`error decoding patch: ${error.message}`);
    if (error instanceof PatchConflictError)
      throw new ApiStatusError(422, "Invalid", `the server rejected our request due to an error in our request: ${error.message}`);
    throw error;
  }
  if (!isJsonObject(patched)) throw new ApiStatusError(422, "Invalid", "the patched object is not a JSON object");
  return patched;
}
