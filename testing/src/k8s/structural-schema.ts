/**
 * The Kubernetes rules for a CRD's openAPIV3Schema that can be checked offline: the keywords
 * apiextensions.k8s.io/v1 accepts, structural-schema rules (KEP 1002 and the API server's
 * apiextensions validation: a type on every specified node, nothing but value validations
 * inside allOf/anyOf/oneOf/not and nothing there that is not also specified outside, the two
 * int-or-string shapes, metadata restricted to name and generateName, properties and
 * additionalProperties never together), defaults and enums of the node's type, and the
 * x-kubernetes-* extensions (their own rules are in schema-extensions.ts). The CRD around the
 * schema is checked by crd-problems.ts. Returns a list of problems, each naming where it is;
 * empty means structural.
 */

import type { JsonValue } from "../manifests.js";
import { isJsonObject } from "../manifests.js";
import type { SchemaNode } from "./crd-schema.js";
import { propertyNode } from "./crd-schema.js";
import { checkListAndMapTypes, checkValidations } from "./schema-extensions.js";

/** JSONSchemaProps fields, in their JSON spelling (k8s.io/apiextensions-apiserver types). */
const knownKeywords = new Set([
  "description",
  "type",
  "format",
  "title",
  "default",
  "nullable",
  "example",
  "externalDocs",
  "maximum",
  "exclusiveMaximum",
  "minimum",
  "exclusiveMinimum",
  "multipleOf",
  "maxLength",
  "minLength",
  "pattern",
  "maxItems",
  "minItems",
  "uniqueItems",
  "maxProperties",
  "minProperties",
  "enum",
  "required",
  "items",
  "properties",
  "additionalProperties",
  "allOf",
  "anyOf",
  "oneOf",
  "not",
  "x-kubernetes-preserve-unknown-fields",
  "x-kubernetes-embedded-resource",
  "x-kubernetes-int-or-string",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-list-type",
  "x-kubernetes-map-type",
  "x-kubernetes-validations",
]);
/** Known to JSONSchemaProps but refused by apiextensions.k8s.io/v1. */
const forbiddenKeywords = new Set(["$ref", "$schema", "id", "definitions", "dependencies", "patternProperties", "additionalItems"]);
const types = new Set(["array", "boolean", "integer", "number", "object", "string"]);
/** Formats the API server knows; an unknown one is silently not checked, which hides typos. */
const formats = new Set([
  "int32",
  "int64",
  "float",
  "double",
  "byte",
  "date",
  "date-time",
  "duration",
  "uuid",
  "hostname",
  "ipv4",
  "ipv6",
  "cidr",
  "mac",
  "uri",
  "email",
  "password",
  "binary",
]);
/** What may not appear inside allOf/anyOf/oneOf/not ("must be empty/undefined to be structural"). */
const forbiddenInJunctors = [
  "type",
  "description",
  "title",
  "default",
  "nullable",
  "additionalProperties",
  "x-kubernetes-preserve-unknown-fields",
  "x-kubernetes-embedded-resource",
  "x-kubernetes-int-or-string",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-list-type",
  "x-kubernetes-map-type",
  "x-kubernetes-validations",
];
const junctors = ["allOf", "anyOf", "oneOf"] as const;

type Level = "root" | "items" | "field";

export function structuralProblems(root: SchemaNode): string[] {
  const problems: string[] = [];
  checkNode(root, "openAPIV3Schema", "root", problems);
  return problems;
}

function isIntOrStringAnyOf(anyOf: JsonValue | undefined): boolean {
  return JSON.stringify(anyOf) === JSON.stringify([{ type: "integer" }, { type: "string" }]);
}

function checkNode(node: SchemaNode, at: string, level: Level, problems: string[]): void {
  const report = (problem: string) => problems.push(`${at}: ${problem}`);
  for (const key of Object.keys(node)) {
    if (forbiddenKeywords.has(key)) report(`${key} is not supported by apiextensions.k8s.io/v1`);
    else if (!knownKeywords.has(key)) report(`unknown keyword ${key}`);
  }
  const type = node["type"];
  const intOrString = node["x-kubernetes-int-or-string"] === true;
  const preserve = node["x-kubernetes-preserve-unknown-fields"];
  if (type !== undefined && (typeof type !== "string" || !types.has(type)))
    report(`type ${JSON.stringify(type)} is not one of ${[...types].join(", ")}`);
  if (type === undefined && !intOrString && preserve !== true)
    report(
      `type must not be empty for ${level === "root" ? "the root" : level === "items" ? "specified array items" : "specified object fields"}`,
    );
  if (level === "root" && type !== "object") report("type must be object at the root");
  if (node["format"] !== undefined && !formats.has(String(node["format"])))
    report(`format ${JSON.stringify(node["format"])} is unknown to the API server`);
  if (node["uniqueItems"] === true) report("uniqueItems cannot be set to true");
  if (preserve !== undefined && preserve !== true) report("x-kubernetes-preserve-unknown-fields must be true or undefined");
  if (intOrString && preserve === true) report("x-kubernetes-preserve-unknown-fields must be false if x-kubernetes-int-or-string is true");
  if (intOrString && node["x-kubernetes-embedded-resource"] === true)
    report("x-kubernetes-embedded-resource must be false if x-kubernetes-int-or-string is true");
  if (node["x-kubernetes-embedded-resource"] === true && type !== "object") report("x-kubernetes-embedded-resource needs type object");
  if (typeof node["pattern"] === "string") {
    try {
      new RegExp(node["pattern"], "u");
    } catch (error) {
      report(`pattern does not compile: ${String(error)}`);
    }
  }
  if (node["exclusiveMinimum"] !== undefined && node["minimum"] === undefined) report("exclusiveMinimum without minimum");
  if (node["exclusiveMaximum"] !== undefined && node["maximum"] === undefined) report("exclusiveMaximum without maximum");

  const properties = node["properties"];
  const additional = node["additionalProperties"];
  if (properties !== undefined && additional !== undefined) report("additionalProperties and properties are mutually exclusive");
  if (level === "root" && additional !== undefined) report("additionalProperties must not be used at the root");
  if (properties !== undefined && type !== undefined && type !== "object") report(`has properties but type ${String(type)}`);
  if (type === "array") {
    if (!isJsonObject(node["items"])) report("an array needs items, a single schema");
  } else if (node["items"] !== undefined) report(`has items but type ${String(type)}`);

  checkListAndMapTypes(node, report);
  checkValidations(node, report);

  if (isJsonObject(properties)) {
    for (const [key, child] of Object.entries(properties)) {
      const childAt = `${at}.properties.${key}`;
      if (!isJsonObject(child)) {
        problems.push(`${childAt}: not a schema`);
        continue;
      }
      if (level === "root" && key === "metadata") checkRootMetadata(child, childAt, problems);
      else checkNode(child, childAt, "field", problems);
      if (level === "root" && (key === "apiVersion" || key === "kind") && child["type"] !== "string")
        problems.push(`${childAt}.type: must be string`);
    }
  }
  if (isJsonObject(node["items"])) checkNode(node["items"], `${at}.items`, "items", problems);
  if (isJsonObject(additional)) checkNode(additional, `${at}.additionalProperties`, "field", problems);

  for (const junctor of junctors) {
    const branches = node[junctor];
    if (branches === undefined) continue;
    if (!Array.isArray(branches)) {
      report(`${junctor} must be a list`);
      continue;
    }
    branches.forEach((branch, i) => {
      if (!isJsonObject(branch)) return report(`${junctor}[${i}] is not a schema`);
      const intOrStringShape =
        intOrString &&
        ((junctor === "anyOf" && isIntOrStringAnyOf(branches)) || (junctor === "allOf" && i === 0 && isIntOrStringAnyOf(branch["anyOf"])));
      if (junctor === "anyOf" && intOrStringShape) return;
      checkNested(branch, node, `${at}.${junctor}[${i}]`, problems, intOrStringShape);
    });
  }
  if (isJsonObject(node["not"])) checkNested(node["not"], node, `${at}.not`, problems, false);
  else if (node["not"] !== undefined) report("not is not a schema");
  if (
    intOrString &&
    (node["anyOf"] !== undefined || node["allOf"] !== undefined) &&
    !isIntOrStringAnyOf(node["anyOf"]) &&
    !(Array.isArray(node["allOf"]) && isJsonObject(node["allOf"][0]) && isIntOrStringAnyOf(node["allOf"][0]["anyOf"]))
  ) {
    report("x-kubernetes-int-or-string with anyOf/allOf must use the anyOf [integer, string] shape");
  }
  checkDefault(node, report);
}

/** A value validation under a junctor: no structure of its own, and nothing the outer schema lacks. */
function checkNested(nested: SchemaNode, outer: SchemaNode | undefined, at: string, problems: string[], skipAnyOf: boolean): void {
  const report = (problem: string) => problems.push(`${at}: ${problem}`);
  for (const key of forbiddenInJunctors)
    if (nested[key] !== undefined) report(`${key} must be empty to be structural (inside allOf/anyOf/oneOf/not)`);
  for (const key of Object.keys(nested)) {
    if (forbiddenKeywords.has(key)) report(`${key} is not supported by apiextensions.k8s.io/v1`);
    else if (!knownKeywords.has(key)) report(`unknown keyword ${key}`);
  }
  const properties = nested["properties"];
  if (isJsonObject(properties)) {
    for (const [key, child] of Object.entries(properties)) {
      if (key === "metadata") report("properties.metadata must not be specified in a nested context");
      const outerChild = outer === undefined ? undefined : propertyNode(outer, key);
      if (outerChild === undefined) report(`properties.${key} is not specified outside the junctor`);
      if (isJsonObject(child)) checkNested(child, outerChild, `${at}.properties.${key}`, problems, false);
    }
  }
  if (isJsonObject(nested["items"])) {
    const outerItems = outer?.["items"];
    if (!isJsonObject(outerItems)) report("items is not specified outside the junctor");
    checkNested(nested["items"], isJsonObject(outerItems) ? outerItems : undefined, `${at}.items`, problems, false);
  }
  for (const junctor of junctors) {
    const branches = nested[junctor];
    if (!Array.isArray(branches) || (junctor === "anyOf" && skipAnyOf)) continue;
    branches.forEach((branch, i) => {
      if (isJsonObject(branch)) checkNested(branch, outer, `${at}.${junctor}[${i}]`, problems, false);
    });
  }
  if (isJsonObject(nested["not"])) checkNested(nested["not"], outer, `${at}.not`, problems, false);
}

/** At the root, metadata may only restrict name and generateName: nothing else, not even a description. */
function checkRootMetadata(metadata: SchemaNode, at: string, problems: string[]): void {
  for (const key of Object.keys(metadata)) {
    if (key !== "type" && key !== "properties") problems.push(`${at}.${key}: must not specify anything other than name and generateName`);
  }
  if (metadata["type"] !== "object") problems.push(`${at}.type: must be object`);
  const properties = metadata["properties"];
  if (properties === undefined) return;
  if (!isJsonObject(properties)) return void problems.push(`${at}.properties: not an object`);
  for (const [key, child] of Object.entries(properties)) {
    if (key !== "name" && key !== "generateName")
      problems.push(`${at}.properties.${key}: must not specify anything other than name and generateName`);
    else if (isJsonObject(child)) {
      if (child["type"] !== "string") problems.push(`${at}.properties.${key}.type: must be string`);
      if (child["default"] !== undefined) problems.push(`${at}.properties.${key}.default: must not be set in top-level metadata`);
      checkNode(child, `${at}.properties.${key}`, "field", problems);
    }
  }
}

/** A default and each enum value must be a value of the node's type (the API server checks both). */
function checkDefault(node: SchemaNode, report: (problem: string) => void): void {
  const type = node["type"];
  const value = node["default"];
  if (value !== undefined && !hasType(value, type)) report(`default ${JSON.stringify(value)} is not of type ${String(type)}`);
  const values = node["enum"];
  if (values === undefined) return;
  if (!Array.isArray(values) || values.length === 0) return report("enum must be a non-empty list");
  for (const entry of values) if (!hasType(entry, type)) report(`enum value ${JSON.stringify(entry)} is not of type ${String(type)}`);
}

function hasType(value: JsonValue, type: JsonValue | undefined): boolean {
  switch (type) {
    case "object":
      return isJsonObject(value);
    case "array":
      return Array.isArray(value);
    case "integer":
      return Number.isInteger(value);
    case "number":
      return typeof value === "number";
    case "string":
      return typeof value === "string";
    case "boolean":
      return typeof value === "boolean";
    default:
      return false;
  }
}
