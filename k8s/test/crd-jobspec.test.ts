/**
 * The TrainingJob CRD and the JobSpec proto describe the same job: every proto field has its
 * CRD field of a matching type (the table in k8s/src/job-spec.ts), every CRD field is
 * the proto's, pending the elasticity issue, or about pods only; the CRD's enums are the
 * proto's; its defaults are the coordinator's; and at both ends of every range the CRD accepts
 * exactly what spec/src/validate-job-spec.ts accepts (and keeps: zero means "unset" in proto3).
 */

import { create, ScalarType, toJson } from "@bufbuild/protobuf";
import { DatasetSpecSchema, JobSpecSchema } from "@trainfleet/proto";
import { dataShape, resolveJobSpec } from "@trainfleet/spec";
import type { SchemaNode } from "@trainfleet/testing/k8s/crd-schema";
import { fieldPaths, loadCrd, propertyNode, schemaNodes, trainingJobSchema } from "@trainfleet/testing/k8s/crd-schema";
import { createTrainingJobValidator } from "@trainfleet/testing/k8s/training-job-validator";
import { readManifest, repoPath } from "@trainfleet/testing/manifests";
import { describe, expect, it } from "vitest";
import {
  crdEnums,
  jobSpecFromTrainingJob,
  kubernetesOnly,
  pendingInProto,
  pinnedWhenResolved,
  protoField,
  protoFieldPaths,
  protoToCrd,
} from "../src/job-spec.js";
import type { JsonObject, JsonValue } from "../src/json.js";
import { isJsonObject, valueAt } from "../src/json.js";
import { checkTrainingJob } from "../src/training-job-check.js";

const crd = loadCrd();
const schema = trainingJobSchema(crd);
const validate = createTrainingJobValidator(crd);
const minimal = readManifest(repoPath("k8s", "examples", "minimal.yaml"));
const uint32Max = 4_294_967_295;

function crdNode(path: string): SchemaNode | undefined {
  return propertyNode(schema, path);
}

/** The CRD schema type a proto scalar must have. */
function crdType(scalar: ScalarType): string {
  switch (scalar) {
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return "number";
    case ScalarType.STRING:
      return "string";
    case ScalarType.BOOL:
      return "boolean";
    case ScalarType.BYTES:
      return "bytes have no CRD type";
    default:
      return "integer";
  }
}

describe("the JobSpec proto and the TrainingJob CRD", () => {
  it("map every JobSpec field, and nothing else, to a TrainingJob field, but what the coordinator pins when it reads the user's files", () => {
    const pinned = (proto: string) => pinnedWhenResolved.some((prefix) => proto === prefix || proto.startsWith(`${prefix}.`));
    expect(protoToCrd.map(([proto]) => proto).sort()).toEqual(
      protoFieldPaths()
        .filter((proto) => !pinned(proto))
        .sort(),
    );
    expect(protoToCrd.filter(([, path]) => crdNode(path) === undefined).map(([, path]) => path)).toEqual([]);
    // The pinned fields are real, and under fields a TrainingJob has.
    for (const proto of pinnedWhenResolved) {
      expect(() => protoField(proto)).not.toThrow();
      expect(crdNode(`spec.${proto.slice(0, proto.lastIndexOf("."))}`), proto).toBeDefined();
    }
  });

  it("have no TrainingJob field for what the coordinator pins: a job that sets one is refused, by the CRD and by the check", () => {
    const withLayers = structuredClone(minimal);
    (withLayers["spec"] as JsonObject)["model"] = { layers: { uri: "/data/model.json", artifact: { digest: "0".repeat(64) } } };
    expect(validate(withLayers).violations).toEqual([
      { path: "/spec/model/layers/artifact", keyword: "additionalProperties", message: "must NOT have additional properties" },
    ]);
    expect(() => checkTrainingJob(withLayers)).toThrow(
      /^spec\.model\.layers\.artifact: unknown field; spec\.model\.layers has uri, sha256, loss, module/,
    );
    const withFacts = structuredClone(minimal);
    (withFacts["spec"] as JsonObject)["dataset"] = { manifest: "/data/dataset.json", facts: { trainRecords: 10 } };
    expect(validate(withFacts).violations.map((violation) => violation.path)).toEqual(["/spec/dataset/facts"]);
    expect(() => checkTrainingJob(withFacts)).toThrow(/^spec\.dataset\.facts: unknown field/);
  });

  it("give each field the same type, and unsigned fields bounds within uint32", () => {
    const mismatches: string[] = [];
    for (const [proto, path] of protoToCrd) {
      const field = protoField(proto);
      const node = crdNode(path)!;
      const say = (problem: string) => mismatches.push(`${proto} -> ${path}: ${problem}`);
      let scalarNode = node;
      let scalar: ScalarType | undefined;
      if (field.fieldKind === "message") {
        if (node["type"] !== "object") say(`a message needs type object, not ${String(node["type"])}`);
        continue;
      } else if (field.fieldKind === "enum") {
        if (node["type"] !== "string" || !Array.isArray(node["enum"])) say("an enum needs a string enum");
        continue;
      } else if (field.fieldKind === "list" && field.listKind === "scalar") {
        if (node["type"] !== "array" || !isJsonObject(node["items"])) say("a repeated field needs type array with items");
        scalarNode = isJsonObject(node["items"]) ? node["items"] : node;
        scalar = field.scalar;
      } else if (field.fieldKind === "scalar") {
        scalar = field.scalar;
      } else {
        say(`no rule for ${field.fieldKind} fields yet`);
        continue;
      }
      if (scalarNode["type"] !== crdType(scalar)) say(`type ${String(scalarNode["type"])}, expected ${crdType(scalar)}`);
      if (scalar === ScalarType.UINT32) {
        const min =
          scalarNode["minimum"] ?? (Array.isArray(scalarNode["enum"]) ? Math.min(...(scalarNode["enum"] as number[])) : undefined);
        const max =
          scalarNode["maximum"] ?? (Array.isArray(scalarNode["enum"]) ? Math.max(...(scalarNode["enum"] as number[])) : undefined);
        if (typeof min !== "number" || min < 0 || typeof max !== "number" || max > uint32Max)
          say(`uint32 needs bounds within [0, ${uint32Max}], has [${String(min)}, ${String(max)}]`);
      }
    }
    expect(mismatches).toEqual([]);
  });

  it("leave no TrainingJob spec field unaccounted for: each is the proto's, pending, or about pods only", () => {
    const mapped = new Set(protoToCrd.map(([, path]) => path));
    const unaccounted = fieldPaths(schema, "spec").filter(
      (path) =>
        !mapped.has(path) &&
        !pendingInProto.includes(path) &&
        !kubernetesOnly.some((prefix) => path === prefix || path.startsWith(`${prefix}.`)),
    );
    expect(unaccounted).toEqual([]);
  });

  it("list the fields pending the elasticity issue, which JobSpec lacks: remove each here when the proto gains it", () => {
    expect(pendingInProto).toEqual([]);
    for (const path of pendingInProto) {
      expect(crdNode(path), `${path} is not in the CRD`).toBeDefined();
      expect(() => protoField(path.replace(/^spec\./, "")), `JobSpec has ${path} now: move it to protoToCrd`).toThrow(
        /JobSpec has no field/,
      );
    }
  });

  it("have the same enum values, one CRD string for each proto value but UNSPECIFIED", () => {
    for (const [proto, path] of protoToCrd) {
      const field = protoField(proto);
      if (field.fieldKind !== "enum") continue;
      const names = crdEnums[path];
      expect(names, `${path} needs an entry in crdEnums`).toBeDefined();
      expect(crdNode(path)!["enum"]).toEqual(Object.keys(names!));
      expect(Object.values(names!).sort()).toEqual(
        field.enum.values
          .map((value) => value.number)
          .filter((number) => number !== 0)
          .sort(),
      );
    }
  });

  it("default a minimal TrainingJob to exactly the coordinator's defaults", () => {
    const { violations, defaulted } = validate(minimal);
    expect(violations).toEqual([]);
    const asked = create(JobSpecSchema, jobSpecFromTrainingJob(defaulted));
    const resolved = resolveJobSpec(asked);
    expect(toJson(JobSpecSchema, resolved)).toEqual(
      toJson(JobSpecSchema, resolveJobSpec(create(JobSpecSchema, { jobId: "fashion-mnist" }))),
    );
    // Every value the CRD filled in is the one the coordinator would have chosen.
    expect(toJson(JobSpecSchema, resolved)).toMatchObject(toJson(JobSpecSchema, asked) as Record<string, unknown>);
    // ...and every default of the schema whose parent is there was applied, so the comparison above covered it
    // (the defaults of branches a minimal job does not take, such as cnn, sgd or storage, apply when it does).
    const declared = [...schemaNodes(schema)].filter(({ path, node }) => node["default"] !== undefined && path.startsWith("spec."));
    const parentThere = ({ path }: { path: string }) => isJsonObject(valueAt(defaulted, path.slice(0, path.lastIndexOf("."))));
    const unapplied = declared
      .filter(parentThere)
      .filter(({ path }) => valueAt(defaulted, path) === undefined)
      .map(({ path }) => path);
    expect(unapplied).toEqual([]);
    expect(declared.filter((node) => !parentThere(node)).map(({ path }) => path)).toContain("spec.storage.mountPath");
  });

  it("name datasets the coordinator knows", () => {
    const names = crdNode("spec.dataset.name")!["enum"] as string[];
    const shapeOf = (name: string) => () => dataShape(create(DatasetSpecSchema, { name }));
    for (const name of names) expect(shapeOf(name)).not.toThrow();
    expect(shapeOf("mnist")).toThrow();
  });

  it("accept as a TrainingJob name only job ids the coordinator accepts", () => {
    const names = ["a", "fashion-mnist", "a0-b1", "a".repeat(40), "A", "0abc", "a_b", "a.b", "abc-", "-abc", "a".repeat(41)];
    const decisions = names.map((name) => {
      const job = structuredClone(minimal);
      (job["metadata"] as JsonObject)["name"] = name;
      const crdAccepts = validate(job).violations.length === 0;
      let coordinatorAccepts = true;
      try {
        resolveJobSpec(create(JobSpecSchema, { jobId: name }));
      } catch {
        coordinatorAccepts = false;
      }
      return [name, crdAccepts, crdAccepts && !coordinatorAccepts];
    });
    // The CRD accepts the first four and nothing the coordinator would refuse.
    expect(decisions).toEqual(names.map((name, i) => [name, i < 4, false]));
  });
});

interface Case {
  field: string;
  value: JsonValue;
}

/** A TrainingJob with `crd` set to `value`, on the model and optimizer branch it belongs to. */
function trainingJobWith(crdPath: string, value: JsonValue): JsonObject {
  const job = structuredClone(minimal);
  const spec = job["spec"] as JsonObject;
  if (crdPath.includes(".cnn.")) spec["model"] = { cnn: { convFilters: [8], kernelSize: 3 } };
  if (crdPath.includes(".layers.")) spec["model"] = { layers: { uri: "/data/model/model.json" } };
  if (crdPath.includes(".sgd.")) spec["training"] = { optimizer: { sgd: { learningRate: 0.1 } } };
  if (crdPath.includes(".adam.")) spec["training"] = { optimizer: { adam: { learningRate: 0.001 } } };
  // A staleness bound belongs to async mode.
  if (crdPath === "spec.training.maxStaleness") spec["training"] = { mode: "async" };
  // A window belongs to block shuffle, and block shuffle of the built-in dataset needs one.
  if (crdPath === "spec.training.shuffleWindow") spec["training"] = { shuffle: "block" };
  if (crdPath === "spec.training.shuffle" && value === "block") spec["training"] = { shuffleWindow: 1024 };
  // Checkpoints need a volume in a TrainingJob.
  if (crdPath.startsWith("spec.checkpoints.")) spec["checkpoints"] = { claimName: "checkpoints" };
  const keys = crdPath.split(".").slice(1);
  let node = spec;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    node = isJsonObject(next) ? next : (node[key] = {});
  }
  node[keys[keys.length - 1]!] = value;
  return job;
}

/** The values just inside and just outside each bound of a CRD node (integer or number). */
function boundaryValues(node: SchemaNode): number[] {
  if (Array.isArray(node["enum"])) {
    const values = node["enum"] as number[];
    const values2: number[] = [];
    for (let v = Math.min(...values) - 1; v <= Math.max(...values) + 1; v++) values2.push(v);
    return values2;
  }
  const integer = node["type"] === "integer";
  const min = node["minimum"] as number;
  const max = node["maximum"] as number;
  const step = (x: number) => (integer ? 1 : Math.max(Math.abs(x), 1) * 1e-9);
  const values = [min - step(min), min, min + step(min), max - step(max), max, max + step(max)];
  if (typeof node["multipleOf"] === "number") values.push(min + 1, max - 1);
  return values;
}

describe("the CRD's ranges and spec/src/validate-job-spec.ts", () => {
  const cases: Case[] = [];
  for (const [proto, crdPath] of protoToCrd) {
    const field = protoField(proto);
    const node = crdNode(crdPath)!;
    const numeric =
      (field.fieldKind === "scalar" && crdType(field.scalar) !== "string") || (field.fieldKind === "list" && field.listKind === "scalar");
    if (!numeric) continue;
    if (field.fieldKind === "list") {
      const items = node["items"] as SchemaNode;
      for (const value of boundaryValues(items)) cases.push({ field: crdPath, value: [value] });
      const itemValue = items["minimum"] as number;
      const counts = [
        0,
        1,
        4,
        5,
        ...(typeof node["minItems"] === "number" ? [node["minItems"] - 1, node["minItems"]] : []),
        ...(typeof node["maxItems"] === "number" ? [node["maxItems"], node["maxItems"] + 1] : []),
      ];
      for (const count of new Set(counts.filter((c) => c >= 0)))
        cases.push({ field: crdPath, value: Array<number>(count).fill(itemValue) });
    } else {
      for (const value of boundaryValues(node)) cases.push({ field: crdPath, value });
    }
  }

  it("has boundary cases for every numeric JobSpec field", () => {
    expect(new Set(cases.map((c) => c.field)).size).toBe(26);
  });

  it.each(cases)("$field = $value: the CRD accepts it exactly when the coordinator accepts and keeps it", ({ field, value }) => {
    const job = trainingJobWith(field, value);
    const { violations, defaulted } = validate(job);
    const crdAccepts = violations.length === 0;
    const proto = protoToCrd.find(([, path]) => path === field)![0];
    const representable = (Array.isArray(value) ? value : [value]).every(
      (v) => typeof v === "number" && (protoField(proto).scalar !== ScalarType.UINT32 || (Number.isInteger(v) && v >= 0 && v <= uint32Max)),
    );
    if (!representable) {
      expect(crdAccepts, `${JSON.stringify(value)} does not fit the proto's uint32, so the CRD must refuse it`).toBe(false);
      return;
    }
    let coordinatorKeeps: boolean;
    try {
      const resolved = resolveJobSpec(create(JobSpecSchema, jobSpecFromTrainingJob(defaulted)));
      coordinatorKeeps =
        JSON.stringify(valueAt(toJson(JobSpecSchema, resolved, { alwaysEmitImplicit: true }) as JsonObject, proto)) ===
        JSON.stringify(value);
    } catch {
      coordinatorKeeps = false;
    }
    expect({ crdAccepts, violations }).toEqual({ crdAccepts: coordinatorKeeps, violations: crdAccepts ? [] : violations });
  });

  it.each(Object.entries(crdEnums).flatMap(([field, names]) => Object.keys(names).map((value) => ({ field, value }))))(
    "$field = $value is accepted by the CRD and kept by the coordinator",
    ({ field, value }) => {
      const { violations, defaulted } = validate(trainingJobWith(field, value));
      expect(violations).toEqual([]);
      const resolved = resolveJobSpec(create(JobSpecSchema, jobSpecFromTrainingJob(defaulted)));
      const proto = protoToCrd.find(([, path]) => path === field)![0];
      expect(valueAt(toJson(JobSpecSchema, resolved, { enumAsInteger: true }) as JsonObject, proto)).toBe(crdEnums[field]![value]);
    },
  );
});

interface FilesCase {
  name: string;
  /** Fields of spec set over minimal.yaml's. */
  spec: JsonObject;
  /** Whether the coordinator accepts it (resolveJobSpec on the operator's conversion); the CRD must agree. */
  accepted: boolean;
}

/** Cases the CRD refuses though the coordinator would take them: Kubernetes' own rules, each with its reason. */
interface KubernetesOnlyCase {
  name: string;
  spec: JsonObject;
  why: string;
}

const model = "/data/models/classifier/model.json";
const manifest = "/data/datasets/digits/dataset.json";
const digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

describe("the CRD's rules on the user's model and data, and the coordinator's", () => {
  const cases: FilesCase[] = [
    { name: "a model on the volume", spec: { model: { layers: { uri: model } } }, accepted: true },
    {
      name: "a model behind https",
      spec: { model: { layers: { uri: "https://models.example.com/classifier/model.json" } } },
      accepted: true,
    },
    { name: "a model in a bucket", spec: { model: { layers: { uri: "s3://models/classifier/model.json" } } }, accepted: true },
    { name: "a model without its uri", spec: { model: { layers: { loss: "mean-squared-error" } } }, accepted: false },
    { name: "a model with its sha256", spec: { model: { layers: { uri: model, sha256: digest } } }, accepted: true },
    { name: "an upper-case sha256", spec: { model: { layers: { uri: model, sha256: digest.toUpperCase() } } }, accepted: false },
    { name: "a sha256 one digit short", spec: { model: { layers: { uri: model, sha256: digest.slice(1) } } }, accepted: false },
    { name: "a module in the image", spec: { model: { layers: { uri: model, module: "/app/model/layers.mjs" } } }, accepted: true },
    {
      name: "a module behind https",
      spec: { model: { layers: { uri: model, module: "https://example.com/layers.mjs" } } },
      accepted: false,
    },
    { name: "a module in a bucket", spec: { model: { layers: { uri: model, module: "s3://models/layers.mjs" } } }, accepted: false },
    { name: "a manifest", spec: { dataset: { manifest } }, accepted: true },
    {
      name: "a manifest in a bucket with its evaluation manifest",
      spec: { dataset: { manifest: "s3://data/digits/dataset.json", evalManifest: "s3://data/digits/eval.json" } },
      accepted: true,
    },
    { name: "a manifest with its sha256", spec: { dataset: { manifest, sha256: digest } }, accepted: true },
    { name: "a manifest with an upper-case sha256", spec: { dataset: { manifest, sha256: digest.toUpperCase() } }, accepted: false },
    { name: "a built-in name and a manifest", spec: { dataset: { name: "fashion-mnist", manifest } }, accepted: false },
    { name: "an evaluation manifest alone", spec: { dataset: { evalManifest: manifest } }, accepted: false },
    { name: "a sha256 without a manifest", spec: { dataset: { sha256: digest } }, accepted: false },
    { name: "an empty dataset (the built-in default)", spec: { dataset: {} }, accepted: true },
    { name: "block shuffle of a manifest's blocks", spec: { dataset: { manifest }, training: { shuffle: "block" } }, accepted: true },
    { name: "block shuffle of the built-in dataset without a window", spec: { training: { shuffle: "block" } }, accepted: false },
    {
      name: "block shuffle of the built-in dataset in windows",
      spec: { training: { shuffle: "block", shuffleWindow: 1000 } },
      accepted: true,
    },
    {
      name: "a window without block shuffle",
      spec: { dataset: { manifest }, training: { shuffle: "feistel", shuffleWindow: 1000 } },
      accepted: false,
    },
    { name: "feistel shuffle of the built-in dataset", spec: { training: { shuffle: "feistel" } }, accepted: true },
    {
      name: "a model and data on a volume, with credentials",
      spec: {
        model: { layers: { uri: model, loss: "sparse-categorical-crossentropy", module: "/app/model/layers.mjs" } },
        dataset: { manifest },
        storage: { persistentVolumeClaim: { claimName: "training-files" } },
        credentialsSecret: "s3-credentials",
      },
      accepted: true,
    },
  ];
  const withSpec = (spec: JsonObject) => {
    const job = structuredClone(minimal);
    Object.assign(job["spec"] as JsonObject, structuredClone(spec));
    return job;
  };

  it.each(cases)("$name: the CRD accepts it exactly when the coordinator does", ({ spec, accepted }) => {
    const { violations, defaulted } = validate(withSpec(spec));
    let coordinatorAccepts = true;
    try {
      resolveJobSpec(create(JobSpecSchema, jobSpecFromTrainingJob(defaulted)));
    } catch {
      coordinatorAccepts = false;
    }
    expect({ crd: violations.length === 0, coordinator: coordinatorAccepts }).toEqual({ crd: accepted, coordinator: accepted });
  });

  const kubernetesRules: KubernetesOnlyCase[] = [
    {
      name: "a relative model path",
      spec: { model: { layers: { uri: "models/model.json" } } },
      why: "a pod's working directory is the image's, not the user's",
    },
    {
      name: "a relative manifest path",
      spec: { dataset: { manifest: "digits/dataset.json" } },
      why: "a pod's working directory is the image's, not the user's",
    },
    {
      name: "a file:// module",
      spec: { model: { layers: { uri: model, module: "file:///app/layers.mjs" } } },
      why: "a module is a path inside the job's image",
    },
    {
      name: "a relative module path",
      spec: { model: { layers: { uri: model, module: "layers.mjs" } } },
      why: "a module is an absolute path inside the job's image",
    },
    {
      name: "a module on the storage volume",
      spec: {
        model: { layers: { uri: model, module: "/data/models/layers.mjs" } },
        storage: { persistentVolumeClaim: { claimName: "files" } },
      },
      why: "a module runs code: it comes from the image the cluster admits, not from a volume of data",
    },
    {
      name: "a module on a volume mounted elsewhere",
      spec: {
        model: { layers: { uri: "/mnt/files/model.json", module: "/mnt/files/layers.mjs" } },
        storage: { persistentVolumeClaim: { claimName: "files" }, mountPath: "/mnt/files" },
      },
      why: "a module runs code: it comes from the image the cluster admits, not from a volume of data",
    },
    {
      name: "an empty model sha256",
      spec: { model: { layers: { uri: model, sha256: "" } } },
      why: "an empty string says nothing: leave the field out",
    },
  ];

  it.each(kubernetesRules)("$name: refused by the CRD ($why), though the coordinator would take it", ({ spec }) => {
    const job = withSpec(spec);
    expect(validate(job).violations).not.toEqual([]);
    expect(() => resolveJobSpec(create(JobSpecSchema, jobSpecFromTrainingJob(job)))).not.toThrow();
  });

  it("refuses a module that is not a path in the image, and one on the storage volume with a message that says why", () => {
    const violations = (spec: JsonObject) => validate(withSpec(spec)).violations.map(({ path, keyword }) => [path, keyword]);
    for (const module of ["https://example.com/layers.mjs", "s3://models/layers.mjs", "file:///app/layers.mjs", "layers.mjs"])
      expect(violations({ model: { layers: { uri: model, module } } }), module).toEqual([["/spec/model/layers/module", "pattern"]]);
    const onVolume = validate(
      withSpec({
        model: { layers: { uri: model, module: "/data/layers.mjs" } },
        storage: { persistentVolumeClaim: { claimName: "files" } },
      }),
    );
    expect(onVolume.violations.map(({ path, message }) => [path, message])).toEqual([
      [
        "/spec/model/layers/module",
        "a module runs code in the workers, so it comes from the job's image, not from the spec.storage volume; bake it into the image",
      ],
    ]);
  });

  it("mounts storage at /data unless told otherwise, and refuses mount paths over the image's code, the pods' /tmp or the checkpoints, or not absolute", () => {
    const { defaulted } = validate(withSpec({ storage: { persistentVolumeClaim: { claimName: "files" } } }));
    expect(valueAt(defaulted, "spec.storage")).toEqual({ persistentVolumeClaim: { claimName: "files" }, mountPath: "/data" });
    const refused = ["/", "/app", "/tmp", "/var/lib/trainfleet", "/var/lib/trainfleet/checkpoints", "/data/", "data", "/a:b", "/data//x"];
    for (const mountPath of refused) {
      const { violations } = validate(withSpec({ storage: { persistentVolumeClaim: { claimName: "files" }, mountPath } }));
      expect(
        violations.map(({ path }) => path),
        mountPath,
      ).toEqual(["/spec/storage/mountPath"]);
    }
    for (const mountPath of ["/mnt/files", "/data", "/application", "/app/models", "/tmp/files", "/var/lib/trainfleet-data"])
      expect(validate(withSpec({ storage: { persistentVolumeClaim: { claimName: "files" }, mountPath } })).violations, mountPath).toEqual(
        [],
      );
  });

  it("the check that trainfleet submit and the operator make takes a model and data not read yet, and names what is wrong", () => {
    expect(() => checkTrainingJob(withSpec(cases.at(-1)!.spec), { imageOptional: true })).not.toThrow();
    expect(() => checkTrainingJob(withSpec({ model: { mlp: {}, layers: { uri: model } } }), { imageOptional: true })).toThrow(
      "spec.model: give one of mlp or cnn or layers, not both",
    );
    expect(() => checkTrainingJob(withSpec({ dataset: { name: "fashion-mnist", manifest } }), { imageOptional: true })).toThrow(
      /^spec\.dataset\.name: give either/,
    );
    expect(() => checkTrainingJob(withSpec({ model: { layers: { uri: model, loss: "hinge" } } }), { imageOptional: true })).toThrow(
      'spec.model.layers.loss: "hinge" is not one of sparse-categorical-crossentropy, categorical-crossentropy, mean-squared-error, binary-crossentropy',
    );
  });

  it("converts the model and data fields to the JobSpec the coordinator gets, and nothing of storage or credentials", () => {
    const { violations, defaulted } = validate(withSpec(cases.at(-1)!.spec));
    expect(violations).toEqual([]);
    const spec = toJson(JobSpecSchema, create(JobSpecSchema, jobSpecFromTrainingJob(defaulted))) as JsonObject;
    expect(spec["model"]).toEqual({
      layers: { uri: model, loss: "LOSS_SPARSE_CATEGORICAL_CROSSENTROPY", module: "/app/model/layers.mjs" },
    });
    expect(spec["dataset"]).toEqual({ manifest });
    expect(JSON.stringify(spec)).not.toMatch(/training-files|s3-credentials/);
  });
});
