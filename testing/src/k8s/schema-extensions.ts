/**
 * The rules of the x-kubernetes-* extensions on one schema node, as the API server's
 * apiextensions validation applies them: list types (atomic, set, map, and a map's keys: scalar
 * properties of the items, required or defaulted, never nullable), map types, and the shape of
 * each x-kubernetes-validations rule (its fields, a message on one line, a fieldPath that names
 * a field). Whether a CEL rule holds is cel-rules.ts's job; this is the part structural-schema.ts
 * runs on every node.
 */

import { isJsonObject } from "../manifests.js";
import type { SchemaNode } from "./crd-schema.js";
import { propertyNode } from "./crd-schema.js";

const validationRuleKeys = new Set(["rule", "message", "messageExpression", "reason", "fieldPath", "optionalOldSelf"]);

/** x-kubernetes-list-type, -list-map-keys and -map-type: each where it applies, with a value it may have. */
export function checkListAndMapTypes(node: SchemaNode, report: (problem: string) => void): void {
  const listType = node["x-kubernetes-list-type"];
  const mapKeys = node["x-kubernetes-list-map-keys"];
  if (listType !== undefined) {
    if (node["type"] !== "array") report("x-kubernetes-list-type needs type array");
    if (listType !== "atomic" && listType !== "set" && listType !== "map")
      report(`x-kubernetes-list-type ${JSON.stringify(listType)} is not atomic, set or map`);
  }
  if (mapKeys !== undefined && listType !== "map") report("x-kubernetes-list-map-keys needs x-kubernetes-list-type map");
  if (listType === "map") {
    const items = node["items"];
    if (!Array.isArray(mapKeys) || mapKeys.length === 0) report("x-kubernetes-list-type map needs x-kubernetes-list-map-keys");
    if (!isJsonObject(items) || items["type"] !== "object") return report("x-kubernetes-list-type map needs items of type object");
    const required = Array.isArray(items["required"]) ? items["required"] : [];
    for (const key of Array.isArray(mapKeys) ? mapKeys : []) {
      const keyNode = propertyNode(items, String(key));
      if (keyNode === undefined) report(`x-kubernetes-list-map-keys: ${String(key)} is not a property of the items`);
      else if (keyNode["type"] === "object" || keyNode["type"] === "array")
        report(`x-kubernetes-list-map-keys: ${String(key)} must be a scalar`);
      else if (!required.includes(key) && keyNode["default"] === undefined)
        report(`x-kubernetes-list-map-keys: ${String(key)} must be required or have a default`);
      if (keyNode?.["nullable"] === true) report(`x-kubernetes-list-map-keys: ${String(key)} cannot be nullable`);
    }
  }
  if ((listType === "set" || listType === "map") && isJsonObject(node["items"]) && node["items"]["nullable"] === true)
    report(`items cannot be nullable when x-kubernetes-list-type is ${String(listType)}`);
  const mapType = node["x-kubernetes-map-type"];
  if (mapType !== undefined) {
    if (node["type"] !== "object") report("x-kubernetes-map-type needs type object");
    if (mapType !== "atomic" && mapType !== "granular")
      report(`x-kubernetes-map-type ${JSON.stringify(mapType)} is not atomic or granular`);
  }
}

/** The shape of each x-kubernetes-validations rule (not what it says: see cel-rules.ts). */
export function checkValidations(node: SchemaNode, report: (problem: string) => void): void {
  const rules = node["x-kubernetes-validations"];
  if (rules === undefined) return;
  if (!Array.isArray(rules)) return report("x-kubernetes-validations must be a list");
  rules.forEach((rule, i) => {
    if (!isJsonObject(rule)) return report(`x-kubernetes-validations[${i}] is not an object`);
    for (const key of Object.keys(rule)) if (!validationRuleKeys.has(key)) report(`x-kubernetes-validations[${i}]: unknown field ${key}`);
    const text = rule["rule"];
    if (typeof text !== "string" || text.trim() === "") report(`x-kubernetes-validations[${i}].rule is required`);
    const message = rule["message"];
    if (message !== undefined && (typeof message !== "string" || message.trim() === "" || /[\r\n]/.test(message)))
      report(`x-kubernetes-validations[${i}].message must be non-empty and on one line`);
    if (typeof text === "string" && /[\r\n]/.test(text) && message === undefined)
      report(`x-kubernetes-validations[${i}].message is required when the rule has line breaks`);
    const fieldPath = rule["fieldPath"];
    if (
      fieldPath !== undefined &&
      (typeof fieldPath !== "string" || !fieldPath.startsWith(".") || propertyNode(node, fieldPath.slice(1)) === undefined)
    ) {
      report(`x-kubernetes-validations[${i}].fieldPath ${JSON.stringify(fieldPath)} must be a valid path`);
    }
  });
}
