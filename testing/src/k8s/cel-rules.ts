/**
 * The CRD's x-kubernetes-validations (CEL) rules, evaluated offline with @bufbuild/cel the way
 * the API server evaluates them: `self` is the value of the node that holds the rule, integers
 * of `type: integer` fields are CEL ints, objects are maps (so `has(self.f)` tests presence),
 * and a failed rule is reported at the node's path plus the rule's fieldPath.
 * Transition rules (those naming `oldSelf`) run on updates only, and only where the old object
 * has a value at the same place: `oldSelf` is that value. Values correlate by property name and
 * map key, and list items only in lists of x-kubernetes-list-type map, by their keys; a rule
 * below any other list cannot name oldSelf (the API server refuses such a CRD).
 * Not covered: the API server's CEL library extensions (quantity(), isSorted(), ...),
 * optionalOldSelf, ratcheting (an unchanged value that fails a rule passes, Kubernetes 1.30+),
 * and the cost estimate: rules that use them, or iterate, are reported as problems, not run.
 */

import type { CelInput } from "@bufbuild/cel";
import { isCelError, run } from "@bufbuild/cel";
import type { JsonValue } from "../manifests.js";
import { isJsonObject } from "../manifests.js";
import type { SchemaNode } from "./crd-schema.js";
import { propertyNode } from "./crd-schema.js";

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
  optionalOldSelf: boolean;
}

function rulesOf(node: SchemaNode): Rule[] {
  const rules = node["x-kubernetes-validations"];
  if (!Array.isArray(rules)) return [];
  return rules.filter(isJsonObject).map((rule) => ({
    rule: String(rule["rule"]),
    message: typeof rule["message"] === "string" ? rule["message"] : `failed rule: ${String(rule["rule"])}`,
    fieldPath: typeof rule["fieldPath"] === "string" ? rule["fieldPath"] : "",
    optionalOldSelf: rule["optionalOldSelf"] === true,
  }));
}

/** Whether a rule compares with the stored object: the API server runs it on updates only. */
export function isTransitionRule(rule: string): boolean {
  return /\boldSelf\b/.test(rule);
}

/**
 * Every rule of the schema that fails on `value` (a whole TrainingJob, already schema-valid).
 * Without `old` (a create) transition rules are skipped; with it (an update: the stored object,
 * defaulted as the API server defaults what it reads) they run where it has a value.
 */
export function celViolations(schema: SchemaNode, value: JsonValue, old?: JsonValue): RuleViolation[] {
  const violations: RuleViolation[] = [];
  visit(schema, value, old, "", violations);
  return violations;
}

function visit(node: SchemaNode, value: JsonValue, old: JsonValue | undefined, pointer: string, violations: RuleViolation[]): void {
  for (const { rule, message, fieldPath } of rulesOf(node)) {
    const transition = isTransitionRule(rule);
    if (transition && old === undefined) continue;
    const bindings: Record<string, CelInput> = { self: toCel(node, value) };
    if (transition && old !== undefined) bindings["oldSelf"] = toCel(node, old);
    const result = run(rule, bindings);
    if (isCelError(result)) throw new Error(`CEL rule at ${pointer || "/"} failed to evaluate: ${rule}: ${result.message}`);
    if (result !== true) violations.push({ path: pointer + fieldPath.replaceAll(".", "/"), message, rule });
  }
  const properties = node["properties"];
  const additional = node["additionalProperties"];
  const items = node["items"];
  if (isJsonObject(value)) {
    for (const [key, child] of Object.entries(value)) {
      const childNode = isJsonObject(properties) ? properties[key] : additional;
      const oldChild = isJsonObject(old) ? old[key] : undefined;
      if (isJsonObject(childNode)) visit(childNode, child, oldChild, `${pointer}/${key}`, violations);
    }
  } else if (Array.isArray(value) && isJsonObject(items)) {
    value.forEach((child, i) => visit(items, child, correlatedItem(node, child, old), `${pointer}/${i}`, violations));
  }
}

/** The old list's item that `item` updates: in a list-type map, the one with the same keys; elsewhere none. */
function correlatedItem(list: SchemaNode, item: JsonValue, old: JsonValue | undefined): JsonValue | undefined {
  const keys = list["x-kubernetes-list-map-keys"];
  if (list["x-kubernetes-list-type"] !== "map" || !Array.isArray(keys) || !Array.isArray(old) || !isJsonObject(item)) return undefined;
  const identity = (entry: JsonValue) => (isJsonObject(entry) ? JSON.stringify(keys.map((key) => entry[String(key)] ?? null)) : "");
  return old.find((entry) => identity(entry) === identity(item));
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

/** Where a rule may sit: correlatable when every list above it is x-kubernetes-list-type map. */
interface RuleSite {
  path: string;
  node: SchemaNode;
  correlatable: boolean;
}

function* ruleSites(node: SchemaNode, path = "", correlatable = true): Generator<RuleSite> {
  yield { path, node, correlatable };
  const properties = node["properties"];
  if (isJsonObject(properties)) {
    for (const [key, child] of Object.entries(properties))
      if (isJsonObject(child)) yield* ruleSites(child, path === "" ? key : `${path}.${key}`, correlatable);
  }
  const items = node["items"];
  if (isJsonObject(items)) yield* ruleSites(items, `${path}[]`, correlatable && node["x-kubernetes-list-type"] === "map");
  const additional = node["additionalProperties"];
  if (isJsonObject(additional)) yield* ruleSites(additional, `${path}{}`, correlatable);
}

/** CEL macros that iterate: their cost grows with the list or map they walk. */
const iterating = /\.\s*(all|exists|exists_one|map|filter)\s*\(/;

/**
 * Rules that cannot be trusted offline: a `self.a.b` or `oldSelf.a.b` reference or a fieldPath
 * that names no field of the schema (has() on a misspelt field is silently false), a transition
 * rule below a list whose items cannot be correlated, or CEL the evaluator here does not model
 * (optionalOldSelf, Kubernetes library functions). Rules that iterate are refused too: the API
 * server estimates each rule's worst-case cost when the CRD is written (at most 10^7 per rule,
 * 10^8 for all rules of the CRD), and an iteration's estimate multiplies by the size of what it
 * walks; a rule without one costs about the size of the values it compares. Iterate only over
 * lists and maps bounded by maxItems/maxProperties, and check that CRD on an API server.
 */
export function celRuleProblems(schema: SchemaNode): string[] {
  const problems: string[] = [];
  for (const { path, node, correlatable } of ruleSites(schema)) {
    for (const { rule, optionalOldSelf } of rulesOf(node)) {
      const at = `${path || "<root>"}: ${rule}`;
      if (isTransitionRule(rule) && !correlatable)
        problems.push(`${at}: oldSelf below a list that is not x-kubernetes-list-type map has nothing to correlate with`);
      if (optionalOldSelf) problems.push(`${at}: optionalOldSelf is not evaluated offline`);
      if (/\b(quantity|isSorted|sum|min|max|indexOf|lastIndexOf|url|ip|cidr|isQuantity|format)\s*\(/.test(rule))
        problems.push(`${at}: uses a Kubernetes CEL library function that is not modelled offline`);
      if (iterating.test(rule)) problems.push(`${at}: iterates, so its cost is not bounded here: see celRuleProblems`);
      for (const match of rule.matchAll(/\b(self|oldSelf)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        const reference = match[2] ?? "";
        if (propertyNode(node, reference.slice(1)) === undefined)
          problems.push(`${at}: ${match[1]}${reference} is not a field of the schema`);
      }
    }
  }
  return problems;
}
