/**
 * Validates TrainingJob objects offline the way the API server would on create, and on update
 * (createTrainingJobUpdateValidator): the CRD's openAPIV3Schema run by ajv, then its CEL rules
 * (cel-rules.ts), on update with its transition rules comparing the new object with the stored one.
 *
 * The OpenAPI v3.0 schema is translated to the JSON Schema draft that ajv runs:
 * - `exclusiveMinimum: true` next to `minimum` (OpenAPI 3.0) becomes `exclusiveMinimum: <n>`.
 * - Every object with `properties` and without `x-kubernetes-preserve-unknown-fields` gets
 *   `additionalProperties: false`. A CRD may not say that itself; the API server drops unknown
 *   fields (pruning) or, with strict field validation (what kubectl asks for by default), rejects
 *   them. Here they are rejected, so a misspelt field fails a test instead of vanishing.
 * - `default`s are applied before validation (ajv's useDefaults), as the API server applies
 *   them before it validates; the defaulted object is returned.
 * - The x-kubernetes-* keywords are declared; int-or-string and list-type map/set are checked.
 * Not modelled: metadata beyond the name, the API server's own ObjectMeta validation, pruning
 * of unknown fields inside `x-kubernetes-preserve-unknown-fields` trees (kept, as there), and
 * ratcheting on update (Kubernetes 1.30+ lets an unchanged value that fails validation pass).
 */

import type { ErrorObject } from "ajv";
import { Ajv } from "ajv";
import type { JsonObject, JsonValue } from "../manifests.js";
import { isJsonObject } from "../manifests.js";
import { celViolations } from "./cel-rules.js";
import type { SchemaNode } from "./crd-schema.js";
import { loadCrd, objectAt, trainingJobSchema } from "./crd-schema.js";

export interface SchemaViolation {
  /** JSON pointer of the offending field: for a missing or unknown field, that field's own path. */
  path: string;
  /** The JSON Schema keyword that failed, or `x-kubernetes-validations` for a CEL rule. */
  keyword: string;
  message: string;
}

export interface ValidationResult {
  violations: SchemaViolation[];
  /** The object with the schema's defaults applied. */
  defaulted: JsonObject;
}

export type TrainingJobValidator = (object: JsonObject) => ValidationResult;

const annotationKeywords = [
  "x-kubernetes-preserve-unknown-fields",
  "x-kubernetes-embedded-resource",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-map-type",
  "x-kubernetes-validations",
];

const dateTime = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** An ajv instance that knows Kubernetes' keywords and formats (also used for single nodes). */
export function createKubernetesAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictRequired: false, useDefaults: true });
  for (const keyword of annotationKeywords) ajv.addKeyword({ keyword });
  ajv.addKeyword({
    keyword: "x-kubernetes-int-or-string",
    schemaType: "boolean",
    validate: (enabled: boolean, data: unknown) => !enabled || Number.isInteger(data) || typeof data === "string",
  });
  ajv.addKeyword({
    keyword: "x-kubernetes-list-type",
    type: "array",
    schemaType: "string",
    validate: (listType: string, data: unknown[], parentSchema?: Record<string, unknown>) => {
      if (listType === "atomic") return true;
      const keys = parentSchema?.["x-kubernetes-list-map-keys"];
      const identity = (item: unknown) =>
        listType === "map" && Array.isArray(keys) && isJsonObject(item)
          ? JSON.stringify(keys.map((key) => item[String(key)]))
          : JSON.stringify(item);
      return new Set(data.map(identity)).size === data.length;
    },
  });
  // A non-integer is the `type` keyword's failure, not the format's.
  ajv.addFormat("int32", { type: "number", validate: (n: number) => !Number.isInteger(n) || (n >= -(2 ** 31) && n <= 2 ** 31 - 1) });
  ajv.addFormat("int64", { type: "number", validate: (n: number) => !Number.isInteger(n) || Math.abs(n) <= 2 ** 63 });
  ajv.addFormat("date-time", { type: "string", validate: (s: string) => dateTime.test(s) && !Number.isNaN(Date.parse(s)) });
  return ajv;
}

/** Where a node sits: only the root's metadata stays open (the API server validates ObjectMeta itself). */
type Position = "root" | "rootMetadata" | "nested";

/** The OpenAPI v3.0 node as JSON Schema for ajv (see the file comment). */
export function toAjvSchema(node: SchemaNode, position: Position = "nested"): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === "properties" && isJsonObject(value)) {
      out[key] = Object.fromEntries(
        Object.entries(value).map(([name, child]) => [
          name,
          isJsonObject(child) ? toAjvSchema(child, position === "root" && name === "metadata" ? "rootMetadata" : "nested") : child,
        ]),
      );
    } else if ((key === "items" || key === "additionalProperties" || key === "not") && isJsonObject(value)) {
      out[key] = toAjvSchema(value);
    } else if ((key === "allOf" || key === "anyOf" || key === "oneOf") && Array.isArray(value)) {
      out[key] = value.map((branch) => (isJsonObject(branch) ? toAjvSchema(branch) : branch));
    } else if (key === "exclusiveMinimum" || key === "exclusiveMaximum") {
      if (value === true) out[key] = node[key === "exclusiveMinimum" ? "minimum" : "maximum"] ?? null;
    } else if ((key === "minimum" || key === "maximum") && node[key === "minimum" ? "exclusiveMinimum" : "exclusiveMaximum"] === true) {
    } else {
      out[key] = value;
    }
  }
  if (position !== "rootMetadata" && isJsonObject(node["properties"]) && node["x-kubernetes-preserve-unknown-fields"] !== true)
    out["additionalProperties"] = false;
  return out;
}

function fieldPathOf(error: ErrorObject): string {
  if (error.keyword === "required") return `${error.instancePath}/${String(error.params["missingProperty"])}`;
  if (error.keyword === "additionalProperties") return `${error.instancePath}/${String(error.params["additionalProperty"])}`;
  return error.instancePath;
}

export type TrainingJobUpdateValidator = (stored: JsonObject, updated: JsonObject) => ValidationResult;

interface CompiledCrd {
  schema: SchemaNode;
  /** The schema's violations of `object` (defaults applied to it in place first), CEL rules aside. */
  schemaViolations(object: JsonObject): SchemaViolation[];
}

function compileCrd(crd: JsonObject): CompiledCrd {
  const schema = trainingJobSchema(crd);
  const spec = objectAt(crd, "spec");
  const group = String(spec["group"]);
  const versions = spec["versions"];
  const version = Array.isArray(versions) && isJsonObject(versions[0]) ? String(versions[0]["name"]) : "";
  const kind = String(objectAt(spec, "names")["kind"]);
  const validate = createKubernetesAjv().compile(toAjvSchema(schema, "root"));
  return {
    schema,
    schemaViolations(object) {
      const violations: SchemaViolation[] = [];
      if (object["apiVersion"] !== `${group}/${version}`)
        violations.push({ path: "/apiVersion", keyword: "const", message: `must be ${group}/${version}` });
      if (object["kind"] !== kind) violations.push({ path: "/kind", keyword: "const", message: `must be ${kind}` });
      if (!validate(object)) {
        for (const error of validate.errors ?? [])
          violations.push({ path: fieldPathOf(error), keyword: error.keyword, message: error.message ?? error.keyword });
      }
      return violations;
    },
  };
}

function withCelViolations(
  schema: SchemaNode,
  defaulted: JsonObject,
  violations: SchemaViolation[],
  stored?: JsonObject,
): ValidationResult {
  if (violations.length === 0) {
    for (const violation of celViolations(schema, defaulted, stored))
      violations.push({ path: violation.path, keyword: "x-kubernetes-validations", message: violation.message });
  }
  return { violations, defaulted };
}

/** Validates an object as the API server does when it is created. */
export function createTrainingJobValidator(crd: JsonObject = loadCrd()): TrainingJobValidator {
  const { schema, schemaViolations } = compileCrd(crd);
  return (object) => {
    const defaulted = structuredClone(object);
    return withCelViolations(schema, defaulted, schemaViolations(defaulted));
  };
}

/**
 * Validates an update as the API server does: `updated` in full, as on create, and then the
 * transition rules, with oldSelf taken from `stored` (the object as it was, possibly written
 * under an earlier CRD) with this CRD's defaults applied, as the API server applies them to
 * what it reads.
 */
export function createTrainingJobUpdateValidator(crd: JsonObject = loadCrd()): TrainingJobUpdateValidator {
  const { schema, schemaViolations } = compileCrd(crd);
  return (stored, updated) => {
    const storedDefaulted = structuredClone(stored);
    // Run for the defaults it fills in: what is stored was valid under the CRD it was written with.
    schemaViolations(storedDefaulted);
    const defaulted = structuredClone(updated);
    return withCelViolations(schema, defaulted, schemaViolations(defaulted), storedDefaulted);
  };
}

/** Problems with the schema's `default`s: each must be valid against its own node, as the API server requires. */
export function defaultProblems(nodes: Iterable<{ path: string; node: SchemaNode }>): string[] {
  const ajv = createKubernetesAjv();
  const problems: string[] = [];
  for (const { path, node } of nodes) {
    const value: JsonValue | undefined = node["default"];
    if (value === undefined) continue;
    const { default: _, ...withoutDefault } = toAjvSchema(node);
    const check = ajv.compile(withoutDefault);
    if (!check(structuredClone(value)))
      problems.push(`${path}: default ${JSON.stringify(value)} is invalid: ${ajv.errorsText(check.errors)}`);
  }
  return problems;
}
