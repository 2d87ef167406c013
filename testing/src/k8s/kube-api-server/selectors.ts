/**
 * Label and field selectors as the API server parses them from `labelSelector=` and
 * `fieldSelector=`: equality (`=`, `==`, `!=`), sets (`in`, `notin`) and existence (`key`,
 * `!key`) for labels; `metadata.name` and `metadata.namespace` (and a few pod fields) for fields.
 */

import type { JsonObject, JsonValue } from "../../manifests.js";
import { isJsonObject } from "../../manifests.js";
import { badRequest } from "./api-status.js";

type Requirement =
  | { key: string; operator: "=" | "!="; value: string }
  | { key: string; operator: "in" | "notin"; values: string[] }
  | { key: string; operator: "exists" | "!exists" };

/** A parsed selector; `matches` takes the whole object. */
export type Selector = (object: JsonObject) => boolean;

export const everything: Selector = () => true;

/** Splits on commas outside parentheses: `a in (x,y),b` is two requirements. */
function requirements(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const char of text) {
    if (char === "(") depth++;
    if (char === ")") depth--;
    if (char === "," && depth === 0) {
      parts.push(current.trim());
      current = "";
    } else current += char;
  }
  parts.push(current.trim());
  return parts.filter((part) => part !== "");
}

function parseRequirement(text: string): Requirement {
  const set = /^([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(text);
  if (set !== null) return { key: set[1]!, operator: set[2] as "in" | "notin", values: set[3]!.split(",").map((value) => value.trim()) };
  const equality = /^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/.exec(text);
  if (equality !== null) return { key: equality[1]!, operator: equality[2] === "!=" ? "!=" : "=", value: equality[3]! };
  const exists = /^(!?)([^\s!=(),]+)$/.exec(text);
  if (exists !== null) return { key: exists[2]!, operator: exists[1] === "!" ? "!exists" : "exists" };
  throw badRequest(`unable to parse requirement: ${JSON.stringify(text)}`);
}

function satisfied(requirement: Requirement, value: string | undefined): boolean {
  switch (requirement.operator) {
    case "=":
      return value === requirement.value;
    case "!=":
      return value !== requirement.value;
    case "in":
      return value !== undefined && requirement.values.includes(value);
    case "notin":
      return value === undefined || !requirement.values.includes(value);
    case "exists":
      return value !== undefined;
    case "!exists":
      return value === undefined;
  }
}

function labelsOf(object: JsonObject): Record<string, JsonValue> {
  const metadata = object["metadata"];
  const labels = isJsonObject(metadata) ? metadata["labels"] : undefined;
  return isJsonObject(labels) ? labels : {};
}

export function parseLabelSelector(text: string | null): Selector {
  if (text === null || text.trim() === "") return everything;
  const parsed = requirements(text).map(parseRequirement);
  return (object) => {
    const labels = labelsOf(object);
    return parsed.every((requirement) => {
      const value = labels[requirement.key];
      return satisfied(requirement, typeof value === "string" ? value : undefined);
    });
  };
}

/** Field labels every resource supports, and the extra ones the real server supports for pods. */
const commonFields = ["metadata.name", "metadata.namespace"];
const extraFields: Record<string, string[]> = {
  "/pods": ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "status.phase", "status.podIP"],
};

function fieldValue(object: JsonObject, path: string): string {
  let node: JsonValue | undefined = object;
  for (const key of path.split(".")) node = isJsonObject(node) ? node[key] : undefined;
  return typeof node === "string" ? node : "";
}

export function parseFieldSelector(text: string | null, resourceKey: string): Selector {
  if (text === null || text.trim() === "") return everything;
  const supported = [...commonFields, ...(extraFields[resourceKey] ?? [])];
  const parsed = requirements(text).map((part) => {
    const requirement = parseRequirement(part);
    if (requirement.operator !== "=" && requirement.operator !== "!=")
      throw badRequest(`invalid selector: '${text}'; can't understand '${part}'`);
    if (!supported.includes(requirement.key)) throw badRequest(`field label not supported: ${requirement.key}`);
    return requirement;
  });
  // An unset field compares as "", as in the real server's field sets.
  return (object) => parsed.every((requirement) => satisfied(requirement, fieldValue(object, requirement.key)));
}
