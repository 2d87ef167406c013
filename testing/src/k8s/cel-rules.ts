/**
 * The CRD's x-kubernetes-validations (CEL) rules, evaluated offline with @bufbuild/cel the way
 * the API server evaluates them: `self` is the value of the node that holds the rule, integers
 * of `type: integer` fields are CEL ints, objects are maps (so `has(self.f)` tests presence),
 * and a failed rule is reported at the node's path plus the rule's fieldPath.
 * Not covered: the API server's CEL library extensions (quantity(), isSorted(), ...), transition
 * rules (oldSelf) and the cost budget. Rules that use them are reported as problems, not run.
 */

import type { CelInput } from "@bufbuild/cel";
import { isCelError, run } from "@bufbuild/cel";
import type { JsonValue } from "../manifests.js";
import { isJsonObject } from "../manifests.js";
import type { SchemaNode } from "./crd-schema.js";
import { propertyNode, schemaNodes } from "./crd-schema.js";

export interface RuleViolation {
  /** JSON pointer of the field the rule names (`/spec/workers/minWorkers`). */
  path: string;
  message: string;
  rule: string;
}

interface Rule {
  rule: string;
  message: string;
  fieldPath: string;
}

function rulesOf(node: SchemaNode): Rule[] {
  const rules = node["x-kubernetes-validations"];
  if (!Array.isArray(rules)) return [];
  return rules.filter(isJsonObject).map((rule) => ({
    rule: String(rule["rule"]),
    message: typeof rule["message"] === "string" ? rule["message"] : `failed rule: ${String(rule["rule"])}`,
    fieldPath: typeof rule["fieldPath"] === "string" ? rule["fieldPath"] : "",
  }));
}

/** Every rule of the schema that fails on `value` (a whole TrainingJob, already schema-valid). */
export function celViolations(schema: SchemaNode, value: JsonValue): RuleViolation[] {
  const violations: RuleViolation[] = [];
  visit(schema, value, "", violations);
  return violations;
}

function visit(node: SchemaNode, value: JsonValue, pointer: string, violations: RuleViolation[]): void {
  for (const { rule, message, fieldPath } of rulesOf(node)) {
    const result = run(rule, { self: toCel(node, value) });
    if (isCelError(result)) throw new Error(`CEL rule at ${pointer || "/"} failed to evaluate: ${rule}: ${result.message}`);
    if (result !== true) violations.push({ path: pointer + fieldPath.replaceAll(".", "/"), message, rule });
  }
  const properties = node["properties"];
  const additional = node["additionalProperties"];
  const items = node["items"];
  if (isJsonObject(value)) {
    for (const [key, child] of Object.entries(value)) {
      const childNode = isJsonObject(properties) ? properties[key] : additional;
      if (isJsonObject(childNode)) visit(childNode, child, `${pointer}/${key}`, violations);
    }
  } else if (Array.isArray(value) && isJsonObject(items)) {
    value.forEach((child, i) => visit(items, child, `${pointer}/${i}`, violations));
  }
}

/** A JSON value as the CEL value the API server would bind, typed by its schema node. */
export function toCel(node: SchemaNode | undefined, value: JsonValue): CelInput {
  if (Array.isArray(value)) {
    const items = node?.["items"];
    return value.map((child) => toCel(isJsonObject(items) ? items : undefined, child));
  }
  if (isJsonObject(value)) {
    const properties = node?.["properties"];
    const additional = node?.["additionalProperties"];
    const entries = Object.entries(value).map(([key, child]): [string, CelInput] => {
      const childNode = isJsonObject(properties) ? properties[key] : additional;
      return [key, toCel(isJsonObject(childNode) ? childNode : undefined, child)];
    });
    return new Map(entries);
  }
  if (typeof value === "number") {
    const integer =
      node === undefined || node["type"] === "integer" || node["x-kubernetes-int-or-string"] === true ? Number.isInteger(value) : false;
    return integer ? BigInt(value) : value;
  }
  return value;
}

/**
 * Rules that cannot be trusted offline: a `self.a.b` reference or fieldPath that names no
 * field of the schema (has() on a misspelt field is silently false), or CEL the evaluator
 * here does not model (transition rules, Kubernetes library functions).
 */
export function celRuleProblems(schema: SchemaNode): string[] {
  const problems: string[] = [];
  for (const { path, node } of schemaNodes(schema)) {
    for (const { rule } of rulesOf(node)) {
      const at = `${path || "<root>"}: ${rule}`;
      if (/\boldSelf\b/.test(rule)) problems.push(`${at}: transition rules (oldSelf) are not evaluated offline`);
      if (/\b(quantity|isSorted|sum|min|max|indexOf|lastIndexOf|url|ip|cidr|isQuantity|format)\s*\(/.test(rule))
        problems.push(`${at}: uses a Kubernetes CEL library function that is not modelled offline`);
      for (const match of rule.matchAll(/\bself((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        const reference = match[1] ?? "";
        if (propertyNode(node, reference.slice(1)) === undefined) problems.push(`${at}: self${reference} is not a field of the schema`);
      }
    }
  }
  return problems;
}
