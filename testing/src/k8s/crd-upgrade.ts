/**
 * What a CRD upgrade may change without breaking what a cluster already holds, checked offline
 * between the CRD a cluster has (`previous`) and the one that replaces it (`next`):
 * - crdVersionProblems: the resource keeps its group, names and scope; every version served
 *   before is still served, the old storage version is still listed (objects in etcd are
 *   encoded in it), exactly one storage version, served; several versions with different
 *   schemas need a conversion webhook.
 * - schemaNarrowings: every schema node of `previous` is in `next` and accepts at least what it
 *   accepted: no field removed or retyped, nothing newly required without a default, no enum
 *   value, bound, pattern or format tightened, no new CEL rule that checks a stored value (a
 *   transition rule only refuses changes, never what is stored), no default added or changed
 *   on an existing field (the API server applies defaults to stored objects when it reads them,
 *   so a new default changes what a running job says).
 * Each problem names the field, as a dotted path (`[]` for list items, `{}` for map values).
 * That the objects themselves still validate is checked by validating them (crd-upgrade.test.ts).
 */

import type { JsonObject, JsonValue } from "../manifests.js";
import { isJsonObject } from "../manifests.js";
import { isTransitionRule } from "./cel-rules.js";
import type { SchemaNode } from "./crd-schema.js";

interface Version {
  name: string;
  served: boolean;
  storage: boolean;
  schema: JsonValue | undefined;
}

function versionsOf(crd: JsonObject): Version[] {
  const spec = isJsonObject(crd["spec"]) ? crd["spec"] : {};
  const versions = Array.isArray(spec["versions"]) ? spec["versions"].filter(isJsonObject) : [];
  return versions.map((version) => ({
    name: String(version["name"]),
    served: version["served"] === true,
    storage: version["storage"] === true,
    schema: version["schema"],
  }));
}

function at(object: JsonObject, path: string): JsonValue | undefined {
  let value: JsonValue | undefined = object;
  for (const key of path.split(".")) value = isJsonObject(value) ? value[key] : undefined;
  return value;
}

const same = (a: JsonValue | undefined, b: JsonValue | undefined) => JSON.stringify(a) === JSON.stringify(b);

/** The CRD-level rules of an upgrade: identity, served and stored versions, conversion. */
export function crdVersionProblems(previous: JsonObject, next: JsonObject): string[] {
  const problems: string[] = [];
  for (const path of ["metadata.name", "spec.group", "spec.names.kind", "spec.names.plural", "spec.scope"]) {
    if (!same(at(previous, path), at(next, path)))
      problems.push(
        `${path} changed from ${JSON.stringify(at(previous, path))} to ${JSON.stringify(at(next, path))}: that is another resource`,
      );
  }
  const before = versionsOf(previous);
  const after = versionsOf(next);
  const find = (name: string) => after.find((version) => version.name === name);
  for (const version of before) {
    const now = find(version.name);
    if (now === undefined)
      problems.push(
        `version ${version.name} is gone: objects stored as it must be migrated and it removed from status.storedVersions first`,
      );
    else if (version.served && !now.served) problems.push(`version ${version.name} is no longer served: clients that use it break`);
  }
  const storage = after.filter((version) => version.storage);
  if (storage.length !== 1) problems.push(`exactly one version must be the storage version, not ${storage.length}`);
  for (const version of storage) if (!version.served) problems.push(`storage version ${version.name} must be served`);
  const strategy = at(next, "spec.conversion.strategy") ?? "None";
  if (after.length > 1 && strategy !== "Webhook" && after.some((version) => !same(version.schema, after[0]?.schema)))
    problems.push(
      `versions ${after.map((v) => v.name).join(", ")} differ in schema: conversion strategy ${String(strategy)} only rewrites apiVersion`,
    );
  return problems;
}

const lowerBounds = ["minimum", "minLength", "minItems", "minProperties"] as const;
const upperBounds = ["maximum", "maxLength", "maxItems", "maxProperties"] as const;
/** Keywords whose any change may refuse a stored value: reported for a look, not compared. */
const exactKeywords = [
  "pattern",
  "format",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-map-type",
  "x-kubernetes-embedded-resource",
  "oneOf",
  "anyOf",
  "allOf",
  "not",
] as const;

/** Where `next` accepts less than `previous` (see the file comment); empty when it is a compatible superset. */
export function schemaNarrowings(previous: SchemaNode, next: SchemaNode, path = ""): string[] {
  const problems: string[] = [];
  const report = (problem: string) => problems.push(`${path || "<root>"}: ${problem}`);
  if (!same(previous["type"], next["type"])) report(`type ${String(previous["type"])} became ${String(next["type"])}`);
  for (const key of ["x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string", "nullable"])
    if (previous[key] === true && next[key] !== true) report(`${key} was true and is not`);
  for (const key of lowerBounds) {
    const was = previous[key];
    const now = next[key];
    if (typeof now === "number" && (typeof was !== "number" || now > was)) report(`${key} raised from ${String(was)} to ${now}`);
  }
  for (const key of upperBounds) {
    const was = previous[key];
    const now = next[key];
    if (typeof now === "number" && (typeof was !== "number" || now < was)) report(`${key} lowered from ${String(was)} to ${now}`);
  }
  for (const key of ["exclusiveMinimum", "exclusiveMaximum"])
    if (next[key] === true && previous[key] !== true) report(`${key} made exclusive`);
  const multipleOf = next["multipleOf"];
  const wasMultipleOf = previous["multipleOf"];
  if (typeof multipleOf === "number" && (typeof wasMultipleOf !== "number" || wasMultipleOf % multipleOf !== 0))
    report(`multipleOf ${String(wasMultipleOf)} became ${multipleOf}`);
  for (const key of exactKeywords) if (!same(previous[key], next[key])) report(`${key} changed`);
  const enumValues = next["enum"];
  if (Array.isArray(enumValues)) {
    const was = previous["enum"];
    if (!Array.isArray(was)) report("enum added");
    else for (const value of was) if (!enumValues.some((v) => same(v, value))) report(`enum value ${JSON.stringify(value)} removed`);
  }
  if (previous["default"] === undefined && next["default"] !== undefined)
    report(`default ${JSON.stringify(next["default"])} added: stored objects without the field get it when read`);
  else if (previous["default"] !== undefined && !same(previous["default"], next["default"]))
    report(`default ${JSON.stringify(previous["default"])} became ${JSON.stringify(next["default"])}`);
  const required = Array.isArray(previous["required"]) ? previous["required"] : [];
  for (const name of Array.isArray(next["required"]) ? next["required"] : []) {
    const property = isJsonObject(next["properties"]) ? next["properties"][String(name)] : undefined;
    if (!required.includes(name) && !(isJsonObject(property) && property["default"] !== undefined))
      report(`${String(name)} newly required, without a default`);
  }
  const rules = (node: SchemaNode) =>
    (Array.isArray(node["x-kubernetes-validations"]) ? node["x-kubernetes-validations"] : [])
      .filter(isJsonObject)
      .map((rule) => String(rule["rule"]));
  const previousRules = rules(previous);
  for (const rule of rules(next)) if (!isTransitionRule(rule) && !previousRules.includes(rule)) report(`new rule ${rule}`);

  const child = (key: string) => (path === "" ? key : `${path}.${key}`);
  const previousProperties = previous["properties"];
  const nextProperties = next["properties"];
  if (isJsonObject(previousProperties)) {
    for (const [key, was] of Object.entries(previousProperties)) {
      if (!isJsonObject(was)) continue;
      const now = isJsonObject(nextProperties) ? nextProperties[key] : undefined;
      if (isJsonObject(now)) problems.push(...schemaNarrowings(was, now, child(key)));
      else if (next["x-kubernetes-preserve-unknown-fields"] !== true) problems.push(`${child(key)}: removed`);
    }
  }
  for (const [key, suffix] of [
    ["items", "[]"],
    ["additionalProperties", "{}"],
  ] as const) {
    const was = previous[key];
    const now = next[key];
    if (!isJsonObject(was)) continue;
    if (isJsonObject(now)) problems.push(...schemaNarrowings(was, now, `${path}${suffix}`));
    else report(`${key} removed`);
  }
  return problems;
}
