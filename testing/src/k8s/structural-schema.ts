/**
 * The Kubernetes rules for a CRD's openAPIV3Schema that can be checked offline: the keywords
 * apiextensions.k8s.io/v1 accepts, structural-schema rules (KEP 1002 and the API server's
 * apiextensions validation: a type on every specified node, nothing but value validations
 * inside allOf/anyOf/oneOf/not and nothing there that is not also specified outside, the two
 * int-or-string shapes, metadata restricted to name and generateName, properties and
 * additionalProperties never together), the x-kubernetes-* extensions, and, for the CRD
 * around it, that printer columns and scale paths name fields the schema has.
 * Returns a list of problems, each naming where it is; empty means structural.
 */

import type { JsonObject, JsonValue } from "../manifests.js";
import { isJsonObject } from "../manifests.js";
import type { SchemaNode } from "./crd-schema.js";
import { propertyNode, trainingJobSchema } from "./crd-schema.js";

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
const validationRuleKeys = new Set(["rule", "message", "messageExpression", "reason", "fieldPath", "optionalOldSelf"]);

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

function checkListAndMapTypes(node: SchemaNode, report: (problem: string) => void): void {
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

function checkValidations(node: SchemaNode, report: (problem: string) => void): void {
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

/** CRD-level rules: names, the version, subresource paths and printer columns naming real fields. */
export function crdProblems(crd: JsonObject): string[] {
  const problems: string[] = [];
  const spec = isJsonObject(crd["spec"]) ? crd["spec"] : {};
  const names = isJsonObject(spec["names"]) ? spec["names"] : {};
  const metadata = isJsonObject(crd["metadata"]) ? crd["metadata"] : {};
  if (metadata["name"] !== `${String(names["plural"])}.${String(spec["group"])}`) problems.push("metadata.name must be <plural>.<group>");
  const versions = Array.isArray(spec["versions"]) ? spec["versions"].filter(isJsonObject) : [];
  if (versions.filter((version) => version["storage"] === true).length !== 1)
    problems.push("exactly one version must be the storage version");
  const schema = trainingJobSchema(crd);
  for (const version of versions) {
    const at = `spec.versions[${String(version["name"])}]`;
    const subresources = isJsonObject(version["subresources"]) ? version["subresources"] : {};
    const scale = subresources["scale"];
    if (isJsonObject(scale)) {
      expectPath(schema, scale["specReplicasPath"], ".spec.", "integer", `${at}.subresources.scale.specReplicasPath`, problems);
      expectPath(schema, scale["statusReplicasPath"], ".status.", "integer", `${at}.subresources.scale.statusReplicasPath`, problems);
      if (scale["labelSelectorPath"] !== undefined)
        expectPath(schema, scale["labelSelectorPath"], ".status.", "string", `${at}.subresources.scale.labelSelectorPath`, problems);
    }
    const columns = Array.isArray(version["additionalPrinterColumns"]) ? version["additionalPrinterColumns"].filter(isJsonObject) : [];
    for (const column of columns) {
      const where = `${at}.additionalPrinterColumns[${String(column["name"])}]`;
      const jsonPath = column["jsonPath"];
      if (jsonPath === ".metadata.creationTimestamp") {
        if (column["type"] !== "date") problems.push(`${where}: creationTimestamp is a date`);
        continue;
      }
      const columnType = column["type"];
      if (
        columnType !== "integer" &&
        columnType !== "number" &&
        columnType !== "string" &&
        columnType !== "boolean" &&
        columnType !== "date"
      )
        problems.push(`${where}: unknown type ${String(columnType)}`);
      expectPath(schema, jsonPath, ".", columnType === "date" ? "string" : String(columnType), where, problems);
    }
  }
  return problems;
}

function expectPath(
  schema: SchemaNode,
  path: JsonValue | undefined,
  prefix: string,
  type: string,
  where: string,
  problems: string[],
): void {
  if (typeof path !== "string" || !path.startsWith(prefix))
    return void problems.push(`${where}: ${JSON.stringify(path)} must be a path under ${prefix}`);
  const node = propertyNode(schema, path.slice(1));
  if (node === undefined) problems.push(`${where}: ${path} is not in the schema`);
  else if (node["type"] !== type) problems.push(`${where}: ${path} has type ${String(node["type"])}, expected ${type}`);
}
