/**
 * Upgrading the CRD on a cluster (docs/kubernetes.md, "Upgrading the CRD"): what a cluster holds
 * under the previous release's CRD stays valid under this one. fixtures/crd-previous.yaml is
 * k8s/crd.yaml as it was at commit dcd19f7 (byte for byte; `git show dcd19f7:k8s/crd.yaml`),
 * and fixtures/jobs-previous.yaml jobs valid under it; replace both with the released ones
 * when a version is released. Checked: (a) those jobs, jobs generated at every bound and enum
 * value of the previous schema, and this release's examples validate under the new CRD, its
 * defaults adding only new fields, and a stored job can still be scaled and is still held by
 * the transition rules; (b) the new schema accepts everything the previous one did, but the
 * changes listed here, each documented; (c) the resource, its served versions and its storage
 * version are those the cluster stores objects in.
 */
import { readdirSync } from "node:fs";
import { crdProblems } from "@trainfleet/testing/k8s/crd-problems";
import type { SchemaNode } from "@trainfleet/testing/k8s/crd-schema";
import { loadCrd, schemaNodes, trainingJobSchema } from "@trainfleet/testing/k8s/crd-schema";
import { crdVersionProblems, schemaNarrowings } from "@trainfleet/testing/k8s/crd-upgrade";
import { structuralProblems } from "@trainfleet/testing/k8s/structural-schema";
import { createTrainingJobUpdateValidator, createTrainingJobValidator } from "@trainfleet/testing/k8s/training-job-validator";
import { readManifest, readManifests, repoPath } from "@trainfleet/testing/manifests";
import { describe, expect, it } from "vitest";
import type { JsonObject, JsonValue } from "../src/json.js";
import { isJsonObject, valueAt } from "../src/json.js";

const fixtures = repoPath("k8s", "test", "fixtures");
const previous = readManifest(`${fixtures}/crd-previous.yaml`);
const next = loadCrd();
const previousSchema = trainingJobSchema(previous);
const nextSchema = trainingJobSchema(next);
const validatePrevious = createTrainingJobValidator(previous);
const validateNext = createTrainingJobValidator(next);
const updateNext = createTrainingJobUpdateValidator(next);
const jobsPrevious = readManifests(`${fixtures}/jobs-previous.yaml`);
const examplesDir = repoPath("k8s", "examples");
const exampleFiles = readdirSync(examplesDir)
  .filter((name) => name.endsWith(".yaml"))
  .sort();

/**
 * Where the new schema accepts less than the previous one, each on purpose and documented in
 * docs/kubernetes.md ("Upgrading the CRD"): a job that relied on one must be created again.
 */
const documentedNarrowings = [
  // Pods mount an emptyDir at /tmp since they run with a read-only root filesystem (Pod Security restricted).
  "spec.storage.mountPath: new rule !(self in ['/app', '/tmp', '/var/lib/trainfleet', '/var/lib/trainfleet/checkpoints'])",
];

const nameOf = (job: JsonObject) => String(valueAt(job, "metadata.name"));

/** A copy of `object` with `change` applied to it. */
function edited(object: JsonObject, change: (copy: JsonObject) => void): JsonObject {
  const copy = structuredClone(object);
  change(copy);
  return copy;
}

/** Dotted paths of every scalar and list in `value` (lists whole), under `prefix`. */
function leafPaths(value: JsonValue, prefix = ""): string[] {
  if (!isJsonObject(value)) return [prefix];
  return Object.entries(value).flatMap(([key, child]) => leafPaths(child, prefix === "" ? key : `${prefix}.${key}`));
}

/** The schema node at a dotted path of an object's fields, through properties and map values. */
function schemaAt(root: SchemaNode, path: string): SchemaNode | undefined {
  let node: SchemaNode | undefined = root;
  for (const key of path.split(".")) {
    const properties: JsonValue | undefined = node?.["properties"];
    const additional: JsonValue | undefined = node?.["additionalProperties"];
    const child: JsonValue | undefined = isJsonObject(properties) ? properties[key] : additional;
    node = isJsonObject(child) ? child : undefined;
  }
  return node;
}

/**
 * A job per value at an edge of the previous schema: each integer and number field under spec
 * at its minimum and maximum, each enum value, each boolean; those the previous CRD accepts
 * (its cross-field rules refuse some alone), set on the previous release's full example.
 */
function jobsAtEveryBound(): JsonObject[] {
  const base = jobsPrevious.find((job) => nameOf(job) === "fashion-mnist-full");
  if (base === undefined) throw new Error("fixtures/jobs-previous.yaml: no fashion-mnist-full");
  const jobs: JsonObject[] = [];
  for (const { path, node, edge } of schemaNodes(previousSchema)) {
    if (edge !== "property" || !path.startsWith("spec.") || path.includes("[]") || path.includes("{}")) continue;
    const values: JsonValue[] = [];
    if (Array.isArray(node["enum"])) values.push(...node["enum"]);
    else if (node["type"] === "boolean") values.push(true, false);
    else if (node["type"] === "integer" || node["type"] === "number") {
      const step = node["type"] === "integer" ? 1 : 1e-6;
      const { minimum, maximum } = node;
      if (typeof minimum === "number") values.push(node["exclusiveMinimum"] === true ? minimum + step : minimum);
      if (typeof maximum === "number") values.push(node["exclusiveMaximum"] === true ? maximum - step : maximum);
    }
    for (const value of values) {
      const job = edited(base, (copy) => {
        const keys = path.split(".");
        let parent = copy;
        for (const key of keys.slice(0, -1)) parent = isJsonObject(parent[key]) ? parent[key] : (parent[key] = {});
        parent[keys.at(-1)!] = value;
        (copy["metadata"] as JsonObject)["name"] = `bound-${jobs.length}`;
      });
      if (validatePrevious(job).violations.length === 0) jobs.push(job);
    }
  }
  return jobs;
}

describe("upgrading the CRD from the previous release", () => {
  it("(c) keeps the resource, serves every version it served, and stores in a served version it lists", () => {
    expect(crdVersionProblems(previous, next)).toEqual([]);
    expect(crdProblems(previous)).toEqual([]);
    expect(crdProblems(next)).toEqual([]);
  });

  it("(b) accepts everything the previous schema accepted, but the documented changes", () => {
    expect(structuralProblems(previousSchema)).toEqual([]);
    expect(schemaNarrowings(previousSchema, nextSchema)).toEqual(documentedNarrowings);
  });

  it.each(jobsPrevious.map((job) => [nameOf(job), job] as const))("(a) keeps %s valid, its defaults adding only new fields", (_, job) => {
    const before = validatePrevious(job);
    expect(before.violations, "the fixture must be valid under the previous CRD").toEqual([]);
    const after = validateNext(before.defaulted);
    expect(after.violations).toEqual([]);
    expect(after.defaulted).toMatchObject(before.defaulted);
    const added = leafPaths(after.defaulted).filter((path) => valueAt(before.defaulted, path) === undefined);
    expect(added.filter((path) => schemaAt(previousSchema, path) !== undefined)).toEqual([]);
    expect(validateNext(job).violations).toEqual([]);
  });

  it("(a) keeps valid a job at every bound and enum value of the previous schema", () => {
    const jobs = jobsAtEveryBound();
    // The generator must keep reaching the schema: about two values for each of its fields.
    expect(jobs.length).toBeGreaterThan(50);
    const refused = jobs.flatMap((job) => validateNext(job).violations.map((violation) => `${nameOf(job)}: ${JSON.stringify(violation)}`));
    expect(refused).toEqual([]);
  });

  it.each(exampleFiles)("(a) accepts k8s/examples/%s", (name) => {
    expect(validateNext(readManifest(`${examplesDir}/${name}`)).violations).toEqual([]);
  });

  it.each(jobsPrevious.map((job) => [nameOf(job), job] as const))(
    "lets %s, as stored before, be scaled, suspended and patched, and still holds what it trains",
    (_, job) => {
      const stored = validatePrevious(job).defaulted;
      const scaled = edited(stored, (copy) => {
        const spec = copy["spec"] as JsonObject;
        const workers = spec["workers"] as JsonObject;
        workers["replicas"] = Math.min(Number(workers["replicas"]) + 1, Number(workers["maxWorkers"] ?? 1024));
        spec["runPolicy"] = { ...(isJsonObject(spec["runPolicy"]) ? spec["runPolicy"] : {}), suspend: true };
        copy["status"] = { phase: "Suspended" };
      });
      expect(updateNext(stored, scaled).violations).toEqual([]);
      const retrained = edited(stored, (copy) => void ((copy["spec"] as JsonObject)["training"] = { seed: 99 }));
      expect(updateNext(stored, retrained).violations.map(({ path }) => path)).toContain("/spec/training/seed");
    },
  );

  it("refuses, as documented, a job that mounted its files at /tmp", () => {
    const job = edited(jobsPrevious.find((candidate) => nameOf(candidate) === "digits-pvc")!, (copy) => {
      const spec = copy["spec"] as JsonObject;
      (spec["storage"] as JsonObject)["mountPath"] = "/tmp";
      const model = spec["model"] as JsonObject;
      (model["layers"] as JsonObject)["uri"] = "/tmp/models/digits/model.json";
      spec["dataset"] = { manifest: "/tmp/datasets/digits/dataset.json" };
    });
    expect(validatePrevious(job).violations).toEqual([]);
    expect(validateNext(job).violations.map(({ path, message }) => [path, message.split(";")[0]])).toEqual([
      [
        "/spec/storage/mountPath",
        "mount the files beside /app (the image's code), /tmp (the pods' scratch space) and /var/lib/trainfleet/checkpoints, not over them",
      ],
    ]);
  });
});

describe("the upgrade checks", () => {
  const node = (schema: SchemaNode, path: string) => {
    let current = schema;
    for (const key of path.split(".")) current = (current["properties"] as JsonObject)[key] as JsonObject;
    return current;
  };
  const narrowed: [string, (schema: JsonObject) => void, string][] = [
    ["a field removed", (s) => void delete (node(s, "spec.training")["properties"] as JsonObject)["seed"], "spec.training.seed: removed"],
    [
      "a field retyped",
      (s) => void (node(s, "spec.training.epochs")["type"] = "string"),
      "spec.training.epochs: type integer became string",
    ],
    [
      "a field newly required without a default",
      (s) => void (node(s, "spec.workers")["required"] = ["minWorkers"]),
      "spec.workers: minWorkers newly required, without a default",
    ],
    [
      "an enum value dropped",
      (s) => void (node(s, "spec.training.mode")["enum"] = ["sync"]),
      'spec.training.mode: enum value "async" removed',
    ],
    [
      "a maximum lowered",
      (s) => void (node(s, "spec.workers.replicas")["maximum"] = 512),
      "spec.workers.replicas: maximum lowered from 1024 to 512",
    ],
    [
      "a pattern changed",
      (s) => void (node(s, "spec.credentialsSecret")["pattern"] = "^[a-z]+$"),
      "spec.credentialsSecret: pattern changed",
    ],
    [
      "a default added to an existing field",
      (s) => void (node(s, "spec.workers.maxWorkers")["default"] = 8),
      "spec.workers.maxWorkers: default 8 added: stored objects without the field get it when read",
    ],
    [
      "a new rule on stored values",
      (s) => void (node(s, "spec.training")["x-kubernetes-validations"] = [{ rule: "self.epochs < 100" }]),
      "spec.training: new rule self.epochs < 100",
    ],
  ];
  it.each(narrowed)("report %s", (_, change, problem) => {
    expect(schemaNarrowings(previousSchema, edited(previousSchema, change))).toEqual([problem]);
  });

  it("do not report a new transition rule: it refuses changes, never what is stored", () => {
    const withRule = edited(
      previousSchema,
      (s) => void (node(s, "spec.training")["x-kubernetes-validations"] = [{ rule: "self == oldSelf" }]),
    );
    expect(schemaNarrowings(previousSchema, withRule)).toEqual([]);
  });

  const versions = (crd: JsonObject) => (crd["spec"] as JsonObject)["versions"] as JsonObject[];
  const moved: [string, (crd: JsonObject) => void, string[]][] = [
    [
      "a stored version dropped",
      (c) => void (versions(c)[0]!["name"] = "v1beta1"),
      ["version v1alpha1 is gone: objects stored as it must be migrated and it removed from status.storedVersions first"],
    ],
    [
      "a version no longer served",
      (c) => void (versions(c)[0]!["served"] = false),
      ["version v1alpha1 is no longer served: clients that use it break", "storage version v1alpha1 must be served"],
    ],
    [
      "a second version with another schema and no conversion webhook",
      (c) =>
        void versions(c).push({
          ...structuredClone(versions(c)[0]!),
          name: "v1beta1",
          storage: false,
          schema: { openAPIV3Schema: { type: "object" } },
        }),
      ["versions v1alpha1, v1beta1 differ in schema: conversion strategy None only rewrites apiVersion"],
    ],
    [
      "another group",
      (c) => void ((c["spec"] as JsonObject)["group"] = "trainfleet.io"),
      ['spec.group changed from "trainfleet.dev" to "trainfleet.io": that is another resource'],
    ],
  ];
  it.each(moved)("report %s", (_, change, problems) => {
    expect(crdVersionProblems(previous, edited(previous, change))).toEqual(problems);
  });
});
