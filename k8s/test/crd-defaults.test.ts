/**
 * The TrainingJob CRD's `default:`s against spec's defaults table (spec/src/job-spec-defaults.ts),
 * both ways: every default the CRD declares for a JobSpec field is spec's value there, and
 * every value of spec's table that a TrainingJob field carries is either what the API server
 * fills in or listed below as left to the coordinator, with the reason (and, where the CRD's
 * description states the value, that statement is checked too). A default changed on one
 * side only fails here.
 */

import { create, toJson } from "@bufbuild/protobuf";
import { JobSpecSchema } from "@trainfleet/proto";
import { defaultJobSpec } from "@trainfleet/spec";
import { loadCrd, propertyNode, schemaNodes, trainingJobSchema } from "@trainfleet/testing/k8s/crd-schema";
import { createTrainingJobValidator } from "@trainfleet/testing/k8s/training-job-validator";
import { readManifest, repoPath } from "@trainfleet/testing/manifests";
import { describe, expect, it } from "vitest";
import { crdEnums, jobSpecFromTrainingJob, kubernetesOnly, protoToCrd } from "../src/job-spec.js";
import type { JsonObject, JsonValue } from "../src/json.js";
import { isJsonObject, valueAt } from "../src/json.js";
import { defaultStorageMountPath } from "../src/user-files.js";

const crd = loadCrd();
const schema = trainingJobSchema(crd);
/** Spec's defaults in proto JSON, zeros included (enums as numbers, as crdEnums gives them). */
const specDefaults = toJson(JobSpecSchema, create(JobSpecSchema, defaultJobSpec), {
  alwaysEmitImplicit: true,
  enumAsInteger: true,
}) as JsonObject;
/** A TrainingJob that says nothing but its image (and no name), as the API server stores it: every CRD default applied. */
const defaulted = (() => {
  const minimal = readManifest(repoPath("k8s", "examples", "minimal.yaml"));
  delete (minimal["metadata"] as JsonObject)["name"];
  const { violations, defaulted } = createTrainingJobValidator(crd)(minimal);
  if (violations.length > 0) throw new Error(`the minimal TrainingJob is invalid: ${JSON.stringify(violations)}`);
  return defaulted;
})();

const crdPathOf = (proto: string) => protoToCrd.find(([field]) => field === proto)?.[1];
const protoPathOf = (crdPath: string) => protoToCrd.find(([, field]) => field === crdPath)?.[0];

/** A TrainingJob value at `crdPath` in proto JSON at its proto path, through the operator's own conversion. */
function asProtoJson(crdPath: string, proto: string, value: JsonValue): JsonValue | undefined {
  const trainingJob: JsonObject = {};
  let node = trainingJob;
  const keys = crdPath.split(".");
  for (const key of keys.slice(0, -1)) node = (node[key] = {}) as JsonObject;
  node[keys[keys.length - 1]!] = value;
  const spec = create(JobSpecSchema, jobSpecFromTrainingJob(trainingJob));
  return valueAt(toJson(JobSpecSchema, spec, { enumAsInteger: true }) as JsonObject, proto);
}

/** Where `declared` says something `expected` does not: each value of it must be expected's (arrays whole). */
function disagreements(declared: JsonValue | undefined, expected: JsonValue | undefined, path: string): string[] {
  if (isJsonObject(declared)) {
    if (!isJsonObject(expected)) return [`${path}: ${JSON.stringify(declared)}, spec has ${JSON.stringify(expected)}`];
    return Object.entries(declared).flatMap(([key, value]) => disagreements(value, expected[key], `${path}.${key}`));
  }
  return JSON.stringify(declared) === JSON.stringify(expected)
    ? []
    : [`${path}: ${JSON.stringify(declared)}, spec has ${JSON.stringify(expected)}`];
}

/** The paths of the values spec's table lists (scalars and lists; proto JSON names, a oneof by its case). */
function tablePaths(init: object, prefix = ""): string[] {
  const at = (key: string) => (prefix === "" ? key : `${prefix}.${key}`);
  return Object.entries(init).flatMap(([key, value]: [string, unknown]) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return [at(key)];
    if ("case" in value && "value" in value && typeof value.case === "string" && typeof value.value === "object" && value.value !== null)
      return tablePaths(value.value, at(value.case));
    return tablePaths(value, at(key));
  });
}

interface LeftToCoordinator {
  why: string;
  /** What the CRD field's description must say about it, given spec's value (the CRD spelling of an enum). */
  documented?: (value: string) => string;
}

/**
 * Spec's defaults of TrainingJob fields that the CRD does not declare, so that the API
 * server stores them unset and the coordinator's resolveJobSpec fills them in.
 */
const leftToCoordinator: Record<string, LeftToCoordinator> = {
  jobId: { why: "it is the TrainingJob's metadata.name, which Kubernetes requires: there is nothing to default" },
  "training.maxSteps": {
    why: "zero, which proto3 cannot tell from unset: a declared 0 would change nothing",
    documented: (v) => `${v} or unset means no limit`,
  },
  "training.evalSamples": { why: "zero, which proto3 cannot tell from unset", documented: (v) => `${v} or unset means the whole test set` },
  "training.maxStaleness": {
    why: "zero, which proto3 cannot tell from unset; and the CRD's rule refuses it outside async mode, which a declared default would break",
    documented: (v) => `${v} or unset: no bound`,
  },
  "checkpoints.everySteps": {
    why: "zero, which proto3 cannot tell from unset (and checkpoints has no default: without claimName there are none)",
    documented: (v) => `${v} or unset: only when the job is stopped`,
  },
  "training.mode": {
    why: "not declared: a TrainingJob stores it unset and the coordinator's default applies; the description states it",
    documented: (v) => `Unset: ${v}.`,
  },
  "training.shuffle": {
    why: "not declared: a TrainingJob stores it unset and the coordinator's default applies; the description states it",
    documented: (v) => `Unset: ${v}.`,
  },
  "training.shuffleWindow": {
    why: "zero, which proto3 cannot tell from unset; and the CRD's rule refuses it outside block shuffle, which a declared default would break",
    documented: (v) => `${v} or unset: the dataset's block size`,
  },
  "workers.minWorkers": {
    why: "depends on the placement (colocated: workers.replicas), which a CRD default cannot express",
    documented: (v) => `default ${v} (the global batch is fixed`,
  },
  "workers.pauseTimeoutSeconds": {
    why: "not declared: a TrainingJob stores it unset and the coordinator's default applies; the description states it",
    documented: (v) => `default ${v}.`,
  },
  "workers.stepDeadlineMs": {
    why: "not declared: a TrainingJob stores it unset and the coordinator's default applies; the description states it",
    documented: (v) => `default ${v}.`,
  },
  "workers.maxMissedDeadlines": {
    why: "not declared: a TrainingJob stores it unset and the coordinator's default applies; the description states it",
    documented: (v) => `default ${v}.`,
  },
  "parameterServers.shards": {
    why: "depends on the placement (colocated: one per worker), which a CRD default cannot express",
    documented: (v) => `Unset: ${v} when dedicated`,
  },
};

/** A value of spec's table as the CRD spells it (enums by their CRD names). */
function crdSpelling(crdPath: string, value: JsonValue | undefined): string {
  const names = crdEnums[crdPath];
  const name = names === undefined ? undefined : Object.entries(names).find(([, number]) => number === value)?.[0];
  return name ?? String(value);
}

describe("the CRD's defaults and spec's", () => {
  const declared = [...schemaNodes(schema)].filter(({ node }) => node["default"] !== undefined);

  it("declare defaults only for JobSpec fields", () => {
    const strays = declared
      .map(({ path }) => path)
      .filter((path) => protoPathOf(path) === undefined && !kubernetesOnly.some((prefix) => path.startsWith(`${prefix}.`)));
    expect(strays).toEqual([]);
    // The check below is not vacuous.
    expect(declared.length).toBeGreaterThanOrEqual(15);
  });

  it.each(declared.filter(({ path }) => protoPathOf(path) !== undefined).map(({ path, node }) => ({ path, value: node["default"]! })))(
    "$path: the CRD's default is spec's",
    ({ path, value }) => {
      const proto = protoPathOf(path)!;
      const expected = valueAt(specDefaults, proto);
      expect(expected, `spec has no default for ${proto}`).toBeDefined();
      // An empty object only makes the API server apply its fields' defaults, each checked on its own.
      expect(disagreements(asProtoJson(path, proto, value), expected, proto)).toEqual([]);
    },
  );

  const specLeaves = tablePaths(defaultJobSpec);

  it("leave none of spec's defaults out of this test", () => {
    // Every JobSpec field has its TrainingJob field (crd-jobspec.test.ts), so every value of the table is checked below.
    expect(specLeaves.filter((proto) => crdPathOf(proto) === undefined || valueAt(specDefaults, proto) === undefined)).toEqual([]);
    expect(specLeaves.length).toBeGreaterThanOrEqual(25);
  });

  it.each(specLeaves)("%s: spec's default is what the API server fills in, or left to the coordinator", (proto) => {
    const crdPath = crdPathOf(proto)!;
    const expected = valueAt(specDefaults, proto);
    const filled = valueAt(defaulted, crdPath);
    const left = leftToCoordinator[proto];
    if (left === undefined) {
      expect(
        filled,
        `${crdPath} has no default in the CRD: declare ${JSON.stringify(crdSpelling(crdPath, expected))} there, or list ${proto} in leftToCoordinator with the reason`,
      ).toBeDefined();
      expect(asProtoJson(crdPath, proto, filled!)).toEqual(expected);
      return;
    }
    expect(
      filled,
      `${crdPath} is listed as left to the coordinator (${left.why}), but the CRD declares ${JSON.stringify(filled)}: remove it from the list`,
    ).toBeUndefined();
    if (left.documented !== undefined) {
      const description = String(propertyNode(schema, crdPath)?.["description"]);
      expect(description).toContain(left.documented(crdSpelling(crdPath, expected)));
    }
  });

  it("list as left to the coordinator only defaults spec has", () => {
    expect(Object.keys(leftToCoordinator).filter((proto) => !specLeaves.includes(proto))).toEqual([]);
  });

  it("mount storage where the operator does when the field is unset (a default of the pods', not of the JobSpec)", () => {
    expect(propertyNode(schema, "spec.storage.mountPath")?.["default"]).toBe(defaultStorageMountPath);
    expect(String(propertyNode(schema, "spec.storage.mountPath")?.["description"])).toContain(`Default ${defaultStorageMountPath}.`);
    expect(kubernetesOnly).toContain("spec.storage");
  });

  it("leave workers.maxWorkers to the coordinator: it is workers.replicas (spec's defaultMaxWorkers), which a CRD default cannot express", () => {
    expect(valueAt(defaulted, "spec.workers.maxWorkers")).toBeUndefined();
    expect(String(propertyNode(schema, "spec.workers.maxWorkers")?.["description"])).toContain("Unset: replicas as scaled");
  });
});
