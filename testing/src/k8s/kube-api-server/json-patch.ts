/**
 * JSON Patch (RFC 6902, `application/json-patch+json`): the operations add, remove, replace,
 * move, copy and test over JSON Pointers (RFC 6901). The patch applies to a copy; any failing
 * operation fails the whole patch, as in the real server.
 */

import type { JsonObject, JsonValue } from "../../manifests.js";
import { isJsonObject } from "../../manifests.js";
import { jsonEqual } from "./json-value.js";

/** A patch that is well-formed but does not apply (a missing path, a failed test). */
export class PatchConflictError extends Error {
  override readonly name = "PatchConflictError";
}

/** A body that is not a JSON Patch at all. */
export class MalformedPatchError extends Error {
  override readonly name = "MalformedPatchError";
}

interface Operation {
  op: "add" | "remove" | "replace" | "move" | "copy" | "test";
  path: string;
  value?: JsonValue;
  from?: string;
}

function tokens(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new MalformedPatchError(`invalid JSON pointer ${JSON.stringify(pointer)}`);
  return pointer
    .slice(1)
    .split("/")
    .map((token) => token.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function arrayIndex(array: JsonValue[], token: string, forAdd: boolean): number {
  if (forAdd && token === "-") return array.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new PatchConflictError(`invalid array index ${JSON.stringify(token)}`);
  const index = Number(token);
  if (index > array.length || (!forAdd && index === array.length)) throw new PatchConflictError(`array index ${index} out of bounds`);
  return index;
}

/** The container holding the pointer's last token, and that token. */
function parentOf(document: JsonValue, pointer: string): { parent: JsonObject | JsonValue[]; key: string } {
  const path = tokens(pointer);
  const key = path.pop();
  if (key === undefined) throw new PatchConflictError("the whole document cannot be patched this way");
  let node: JsonValue = document;
  for (const token of path) {
    const next: JsonValue | undefined = Array.isArray(node)
      ? node[arrayIndex(node, token, false)]
      : isJsonObject(node)
        ? node[token]
        : undefined;
    if (next === undefined) throw new PatchConflictError(`path ${pointer} does not exist`);
    node = next;
  }
  if (!Array.isArray(node) && !isJsonObject(node)) throw new PatchConflictError(`path ${pointer} does not exist`);
  return { parent: node, key };
}

function read(document: JsonValue, pointer: string): JsonValue {
  if (pointer === "") return document;
  const { parent, key } = parentOf(document, pointer);
  const value = Array.isArray(parent) ? parent[arrayIndex(parent, key, false)] : parent[key];
  if (value === undefined) throw new PatchConflictError(`path ${pointer} does not exist`);
  return value;
}

function add(document: JsonValue, pointer: string, value: JsonValue): JsonValue {
  if (pointer === "") return value;
  const { parent, key } = parentOf(document, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, true), 0, value);
  else parent[key] = value;
  return document;
}

function remove(document: JsonValue, pointer: string): JsonValue {
  const { parent, key } = parentOf(document, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, false), 1);
  else if (parent[key] === undefined) throw new PatchConflictError(`path ${pointer} does not exist`);
  else delete parent[key];
  return document;
}

function parseOperations(patch: JsonValue): Operation[] {
  if (!Array.isArray(patch)) throw new MalformedPatchError("a JSON patch must be an array of operations");
  return patch.map((entry) => {
    if (!isJsonObject(entry) || typeof entry["path"] !== "string")
      throw new MalformedPatchError(`invalid operation ${JSON.stringify(entry)}`);
    const op = entry["op"];
    if (op !== "add" && op !== "remove" && op !== "replace" && op !== "move" && op !== "copy" && op !== "test")
      throw new MalformedPatchError(`unknown operation ${JSON.stringify(op)}`);
    const operation: Operation = { op, path: entry["path"] };
    if ((op === "add" || op === "replace" || op === "test") && entry["value"] === undefined)
      throw new MalformedPatchError(`operation ${op} at ${operation.path} has no value`);
    if ((op === "move" || op === "copy") && typeof entry["from"] !== "string")
      throw new MalformedPatchError(`operation ${op} at ${operation.path} has no from`);
    if (entry["value"] !== undefined) operation.value = entry["value"];
    if (typeof entry["from"] === "string") operation.from = entry["from"];
    return operation;
  });
}

export function applyJsonPatch(target: JsonValue, patch: JsonValue): JsonValue {
  let document = structuredClone(target);
  for (const operation of parseOperations(patch)) {
    switch (operation.op) {
      case "add":
        document = add(document, operation.path, structuredClone(operation.value!));
        break;
      case "remove":
        document = remove(document, operation.path);
        break;
      case "replace":
        read(document, operation.path);
        document =
          operation.path === ""
            ? structuredClone(operation.value!)
            : add(remove(document, operation.path), operation.path, structuredClone(operation.value!));
        break;
      case "move": {
        const value = read(document, operation.from!);
        document = add(remove(document, operation.from!), operation.path, value);
        break;
      }
      case "copy":
        document = add(document, operation.path, structuredClone(read(document, operation.from!)));
        break;
      case "test":
        if (!jsonEqual(read(document, operation.path), operation.value))
          throw new PatchConflictError(`test operation failed at ${operation.path}`);
        break;
    }
  }
  return document;
}
