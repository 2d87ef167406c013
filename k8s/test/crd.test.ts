/**
 * The TrainingJob CRD (k8s/crd.yaml): its names, subresources and printer columns; that its
 * schema is structural; and that it accepts the examples and rejects each invalid sample for
 * the right field (ajv for the schema, @bufbuild/cel for its CEL rules, as the API server would).
 * Offline, so not covered: the API server's ObjectMeta validation, pruning inside
 * x-kubernetes-preserve-unknown-fields trees, CEL cost limits (transition rules: crd-transitions.test.ts).
 */
import { readdirSync } from "node:fs";
import { celRuleProblems } from "@trainfleet/testing/k8s/cel-rules";
import { crdProblems } from "@trainfleet/testing/k8s/crd-problems";
import { leafFieldPaths, loadCrd, propertyNode, schemaNodes, trainingJobSchema } from "@trainfleet/testing/k8s/crd-schema";
import { structuralProblems } from "@trainfleet/testing/k8s/structural-schema";
import { createTrainingJobValidator, defaultProblems } from "@trainfleet/testing/k8s/training-job-validator";
import { readManifest, repoPath } from "@trainfleet/testing/manifests";
import { CustomResourceDefinition } from "kubernetes-models/apiextensions.k8s.io/v1";
import { describe, expect, it } from "vitest";
import type { JsonObject, JsonValue } from "../src/json.js";
import { isJsonObject, valueAt } from "../src/json.js";
import { checkTrainingJob } from "../src/training-job-check.js";

const crd = loadCrd();
const schema = trainingJobSchema(crd);
const validate = createTrainingJobValidator(crd);
const examplesDir = repoPath("k8s", "examples");
const exampleFiles = readdirSync(examplesDir)
  .filter((name) => name.endsWith(".yaml"))
  .sort();
const example = (name: string) => readManifest(`${examplesDir}/${name}`);

function violationsOf(object: JsonObject): [string, string][] {
  return validate(object).violations.map((violation) => [violation.path, violation.keyword]);
}

/** A copy of `object` with `change` applied to it. */
function edited(object: JsonObject, change: (copy: JsonObject) => void): JsonObject {
  const copy = structuredClone(object);
  change(copy);
  return copy;
}

/** The object at a dotted path of `root`, created on the way. */
function at(root: JsonObject, path: string): JsonObject {
  let node = root;
  for (const key of path.split(".")) {
    const next: JsonValue | undefined = node[key];
    if (isJsonObject(next)) node = next;
    else node = node[key] = {};
  }
  return node;
}

describe("the TrainingJob CRD", () => {
  it("is trainingjobs.trainfleet.dev: kind TrainingJob, short name tj, namespaced, v1alpha1 served and stored", () => {
    expect(crd["apiVersion"]).toBe("apiextensions.k8s.io/v1");
    expect(valueAt(crd, "metadata.name")).toBe("trainingjobs.trainfleet.dev");
    expect(valueAt(crd, "spec.group")).toBe("trainfleet.dev");
    expect(valueAt(crd, "spec.scope")).toBe("Namespaced");
    expect(valueAt(crd, "spec.names")).toEqual({
      kind: "TrainingJob",
      listKind: "TrainingJobList",
      plural: "trainingjobs",
      singular: "trainingjob",
      shortNames: ["tj"],
      categories: ["trainfleet"],
    });
    const versions = valueAt(crd, "spec.versions");
    expect(
      Array.isArray(versions) ? versions.map((v) => (isJsonObject(v) ? [v["name"], v["served"], v["storage"]] : v)) : versions,
    ).toEqual([["v1alpha1", true, true]]);
  });

  it("has the status subresource and a scale subresource on the worker replicas, for kubectl scale and autoscalers", () => {
    const version = (valueAt(crd, "spec.versions") as JsonObject[])[0]!;
    expect(version["subresources"]).toEqual({
      status: {},
      scale: { specReplicasPath: ".spec.workers.replicas", statusReplicasPath: ".status.replicas", labelSelectorPath: ".status.selector" },
    });
  });

  it("prints phase, workers ready/desired, epoch, step, loss and age", () => {
    const version = (valueAt(crd, "spec.versions") as JsonObject[])[0]!;
    const columns = (version["additionalPrinterColumns"] as JsonObject[]).map((column) => [
      column["name"],
      column["type"],
      column["jsonPath"],
    ]);
    expect(columns).toEqual([
      ["Phase", "string", ".status.phase"],
      ["Ready", "integer", ".status.readyReplicas"],
      ["Desired", "integer", ".spec.workers.replicas"],
      ["Epoch", "integer", ".status.epoch"],
      ["Step", "integer", ".status.step"],
      ["Loss", "number", ".status.loss"],
      ["Age", "date", ".metadata.creationTimestamp"],
    ]);
  });

  it("is a valid CustomResourceDefinition for kubernetes-models", () => {
    expect(() => new CustomResourceDefinition(crd as never).validate()).not.toThrow();
  });

  it("has a structural schema, and its scale paths and printer columns name fields of it with the right types", () => {
    expect(structuralProblems(schema)).toEqual([]);
    expect(crdProblems(crd)).toEqual([]);
  });

  it("describes every field, for kubectl explain (the root metadata may carry nothing but name)", () => {
    const undescribed = [...schemaNodes(schema)]
      .filter(({ path, edge }) => edge === "property" && path !== "metadata")
      .filter(({ node }) => typeof node["description"] !== "string" || node["description"].trim().length < 10)
      .map(({ path }) => path);
    expect(undescribed).toEqual([]);
  });

  it("has defaults that are valid values of their own fields", () => {
    expect(defaultProblems(schemaNodes(schema))).toEqual([]);
    expect([...schemaNodes(schema)].filter(({ node }) => node["default"] !== undefined).length).toBeGreaterThan(10);
  });

  it("has CEL rules that name real fields and use only CEL evaluated here", () => {
    expect(celRuleProblems(schema)).toEqual([]);
  });
});

describe("the structural-schema checker", () => {
  const broken = (change: (copy: JsonObject) => void) => structuralProblems(edited(schema, change));
  const cases: [string, (copy: JsonObject) => void, string][] = [
    [
      "a field without a type",
      (s) => void delete at(s, "properties.spec.properties.image")["type"],
      "openAPIV3Schema.properties.spec.properties.image: type must not be empty for specified object fields",
    ],
    [
      "array items without a type",
      (s) => void delete at(s, "properties.spec.properties.model.properties.mlp.properties.hiddenUnits.items")["type"],
      "hiddenUnits.items: type must not be empty for specified array items",
    ],
    [
      "properties next to additionalProperties",
      (s) => void (at(s, "properties.spec.properties.runPolicy")["additionalProperties"] = false),
      "openAPIV3Schema.properties.spec.properties.runPolicy: additionalProperties and properties are mutually exclusive",
    ],
    [
      "a type inside oneOf",
      (s) => void (at(s, "properties.spec.properties.model")["oneOf"] = [{ required: ["mlp"], type: "object" }, { required: ["cnn"] }]),
      "model.oneOf[0]: type must be empty to be structural",
    ],
    [
      "a field inside anyOf that is not specified outside",
      (s) => void (at(s, "properties.spec.properties.model")["anyOf"] = [{ properties: { rnn: { minProperties: 1 } } }]),
      "model.anyOf[0]: properties.rnn is not specified outside the junctor",
    ],
    [
      "a description on the root metadata",
      (s) => void (at(s, "properties.metadata")["description"] = "standard metadata"),
      "openAPIV3Schema.properties.metadata.description: must not specify anything other than name and generateName",
    ],
    [
      "a metadata field other than name",
      (s) => void (at(s, "properties.metadata.properties")["labels"] = { type: "object" }),
      "openAPIV3Schema.properties.metadata.properties.labels: must not specify anything other than name and generateName",
    ],
    [
      "x-kubernetes-preserve-unknown-fields: false",
      (s) =>
        void (at(s, "properties.spec.properties.workers.properties.template.properties.spec")["x-kubernetes-preserve-unknown-fields"] =
          false),
      "x-kubernetes-preserve-unknown-fields must be true or undefined",
    ],
    [
      "a list-map key that is neither required nor defaulted",
      (s) => void (at(s, "properties.status.properties.conditions.items")["required"] = ["status"]),
      "x-kubernetes-list-map-keys: type must be required or have a default",
    ],
    [
      "a misspelt keyword",
      (s) => void (at(s, "properties.spec.properties.training.properties.epochs")["maximun"] = 5),
      "epochs: unknown keyword maximun",
    ],
    [
      "$ref",
      (s) => void (at(s, "properties.spec.properties.training.properties.epochs")["$ref"] = "#/definitions/x"),
      "epochs: $ref is not supported by apiextensions.k8s.io/v1",
    ],
    [
      "an unknown format",
      (s) => void (at(s, "properties.status.properties.startTime")["format"] = "datetime"),
      'startTime: format "datetime" is unknown to the API server',
    ],
    [
      "a CEL fieldPath that names no field",
      (s) => void (at(s, "properties.spec.properties.workers")["x-kubernetes-validations"] = [{ rule: "true", fieldPath: ".minWorker" }]),
      'x-kubernetes-validations[0].fieldPath ".minWorker" must be a valid path',
    ],
    [
      "a default of the wrong type",
      (s) => void (at(s, "properties.spec.properties.training.properties.epochs")["default"] = "3"),
      'epochs: default "3" is not of type integer',
    ],
    [
      "int-or-string with another anyOf",
      (s) =>
        void (at(s, "properties.spec.properties.workers.properties.resources.properties.limits.additionalProperties")["anyOf"] = [
          { type: "integer" },
          { type: "number" },
        ]),
      "must use the anyOf [integer, string] shape",
    ],
  ];
  it.each(cases)("refuses %s", (_, change, problem) => {
    const problems = broken(change);
    expect(
      problems.some((p) => p.includes(problem)),
      problems.join("\n"),
    ).toBe(true);
  });

  it("refuses printer columns and scale paths that name no field, or a field of another type", () => {
    const copy = structuredClone(crd);
    const version = (valueAt(copy, "spec.versions") as JsonObject[])[0]!;
    (version["additionalPrinterColumns"] as JsonObject[])[1]!["jsonPath"] = ".status.readyWorkers";
    at(version, "subresources.scale")["labelSelectorPath"] = ".status.replicas";
    expect(crdProblems(copy)).toEqual([
      "spec.versions[v1alpha1].subresources.scale.labelSelectorPath: .status.replicas has type integer, expected string",
      "spec.versions[v1alpha1].additionalPrinterColumns[Ready]: .status.readyWorkers is not in the schema",
    ]);
  });
});

describe("TrainingJob validation", () => {
  it.each(exampleFiles)("accepts k8s/examples/%s", (name) => {
    expect(validate(example(name)).violations).toEqual([]);
  });

  it.each(exampleFiles)("k8s/examples/%s passes the check the operator and trainfleet submit make", (name) => {
    expect(() => checkTrainingJob(example(name), { imageOptional: true })).not.toThrow();
  });

  it("has an example per source of a user's model and data: a volume, URLs with credentials, the job's image", () => {
    expect(exampleFiles).toEqual(expect.arrayContaining(["own-model-pvc.yaml", "own-model-url.yaml", "own-model-image.yaml"]));
    const pvc = example("own-model-pvc.yaml");
    const mountPath = String(valueAt(pvc, "spec.storage.mountPath"));
    for (const path of ["spec.model.layers.uri", "spec.dataset.manifest", "spec.dataset.evalManifest"])
      expect(String(valueAt(pvc, path)), path).toMatch(new RegExp(`^${mountPath}/`));
    const url = example("own-model-url.yaml");
    expect(String(valueAt(url, "spec.model.layers.uri"))).toMatch(/^https:\/\//);
    expect(String(valueAt(url, "spec.dataset.manifest"))).toMatch(/^s3:\/\//);
    expect(valueAt(url, "spec.credentialsSecret")).toBeDefined();
    const image = example("own-model-image.yaml");
    expect(valueAt(image, "spec.storage")).toBeUndefined();
    expect(valueAt(image, "spec.image")).not.toMatch(/^trainfleet:/);
    for (const path of ["spec.model.layers.uri", "spec.model.layers.module", "spec.dataset.manifest"])
      expect(String(valueAt(image, path)), path).toMatch(/^\/opt\//);
  });

  it("has examples that together set every spec field", () => {
    const set = new Set<string>();
    const collect = (value: JsonValue | undefined, path: string) => {
      if (path !== "") set.add(path);
      if (isJsonObject(value) && (path === "" || isJsonObject(propertyNode(schema, path)?.["properties"]))) {
        for (const [key, child] of Object.entries(value)) collect(child, path === "" ? key : `${path}.${key}`);
      }
    };
    for (const name of exampleFiles) collect(example(name), "");
    expect(leafFieldPaths(schema, "spec").filter((path) => !set.has(path))).toEqual([]);
  });

  it("accepts a complete status, as the operator will write it", () => {
    const withStatus = edited(example("minimal.yaml"), (job) => {
      job["status"] = {
        conditions: [
          {
            type: "Created",
            status: "True",
            reason: "Created",
            message: "pods and services created",
            lastTransitionTime: "2026-01-02T03:04:05Z",
            observedGeneration: 1,
          },
          { type: "Running", status: "True", reason: "Training", message: "", lastTransitionTime: "2026-01-02T03:05:00.5+01:00" },
        ],
        phase: "Running",
        replicas: 2,
        readyReplicas: 2,
        selector: "trainfleet.dev/job=fashion-mnist,trainfleet.dev/role=worker",
        epoch: 2,
        step: 700,
        loss: 0.31,
        accuracy: 0.88,
        samplesPerSecond: 5400.5,
        lastCheckpoint: { step: 500, time: "2026-01-02T03:10:00Z" },
        coordinatorEndpoint: "fashion-mnist-coordinator.ml.svc:7070",
        startTime: "2026-01-02T03:04:05Z",
        completionTime: "2026-01-02T04:00:00Z",
        observedGeneration: 1,
        output: {
          claimName: "trained-models",
          path: "fashion-mnist-0b9f6c1e-8a4d-4f0e-9d6b-2f1c3e5a7b90",
          files: ["parameters.f32", "parameters.json", "model.json", "weights.bin", "status.json"],
          writtenAt: "2026-01-02T04:00:00Z",
        },
      };
    });
    expect(validate(withStatus).violations).toEqual([]);
  });

  it("accepts any pod spec fields in every role's template (preserved for the operator's merge)", () => {
    for (const role of ["coordinator", "parameterServers", "workers"]) {
      const job = edited(example("minimal.yaml"), (copy) => void (at(copy, `spec.${role}.template.spec`)["runtimeClassName"] = "nvidia"));
      expect(violationsOf(job), role).toEqual([]);
    }
  });

  const full = example("full.yaml");
  const asyncJob = example("async.yaml");
  const minimal = example("minimal.yaml");
  const invalid: [string, JsonObject, [string, string][]][] = [
    [
      "negative worker replicas",
      edited(full, (j) => void (at(j, "spec.workers")["replicas"] = -1)),
      [["/spec/workers/replicas", "minimum"]],
    ],
    ["zero worker replicas", edited(minimal, (j) => void (at(j, "spec.workers")["replicas"] = 0)), [["/spec/workers/replicas", "minimum"]]],
    [
      "more than 1024 workers",
      edited(minimal, (j) => void (at(j, "spec.workers")["replicas"] = 1025)),
      [["/spec/workers/replicas", "maximum"]],
    ],
    [
      "a fractional replica count",
      edited(minimal, (j) => void (at(j, "spec.workers")["replicas"] = 2.5)),
      [["/spec/workers/replicas", "type"]],
    ],
    ["replicas as a string", edited(minimal, (j) => void (at(j, "spec.workers")["replicas"] = "3")), [["/spec/workers/replicas", "type"]]],
    [
      "minWorkers above maxWorkers (CEL)",
      edited(full, (j) => Object.assign(at(j, "spec.workers"), { minWorkers: 6, maxWorkers: 5, replicas: 5 })),
      [
        ["/spec/workers/minWorkers", "x-kubernetes-validations"],
        ["/spec/workers/replicas", "x-kubernetes-validations"],
      ],
    ],
    [
      "replicas below minWorkers (CEL)",
      edited(full, (j) => void (at(j, "spec.workers")["replicas"] = 1)),
      [["/spec/workers/replicas", "x-kubernetes-validations"]],
    ],
    [
      "replicas scaled past maxWorkers (CEL)",
      edited(full, (j) => void (at(j, "spec.workers")["replicas"] = 9)),
      [["/spec/workers/replicas", "x-kubernetes-validations"]],
    ],
    [
      "an unknown data plane",
      edited(minimal, (j) => void (at(j, "spec.parameterServers")["dataPlane"] = "rdma")),
      [["/spec/parameterServers/dataPlane", "enum"]],
    ],
    [
      "an unknown wire dtype",
      edited(minimal, (j) => void (at(j, "spec.parameterServers")["wireDtype"] = "int8")),
      [["/spec/parameterServers/wireDtype", "enum"]],
    ],
    [
      "an unknown clean-pod policy",
      edited(full, (j) => void (at(j, "spec.runPolicy")["cleanPodPolicy"] = "Some")),
      [["/spec/runPolicy/cleanPodPolicy", "enum"]],
    ],
    [
      "an unknown training mode",
      edited(full, (j) => void (at(j, "spec.training")["mode"] = "semi-sync")),
      [["/spec/training/mode", "enum"]],
    ],
    [
      "an even kernel size",
      edited(example("cnn-gpu-colocated.yaml"), (j) => void (at(j, "spec.model.cnn")["kernelSize"] = 4)),
      [["/spec/model/cnn/kernelSize", "enum"]],
    ],
    ["an unknown dataset", edited(minimal, (j) => void (at(j, "spec.dataset")["name"] = "mnist")), [["/spec/dataset/name", "enum"]]],
    ["epochs as a word", edited(minimal, (j) => void (at(j, "spec.training")["epochs"] = "three")), [["/spec/training/epochs", "type"]]],
    ["suspend as a string", edited(full, (j) => void (at(j, "spec.runPolicy")["suspend"] = "yes")), [["/spec/runPolicy/suspend", "type"]]],
    ["no spec", edited(minimal, (j) => void delete j["spec"]), [["/spec", "required"]]],
    ["an empty image", edited(minimal, (j) => void (at(j, "spec")["image"] = "")), [["/spec/image", "minLength"]]],
    [
      "sgd without a learning rate",
      edited(minimal, (j) => void (at(j, "spec.training")["optimizer"] = { sgd: { momentum: 0.9 } })),
      [["/spec/training/optimizer/sgd/learningRate", "required"]],
    ],
    [
      "a cnn without a kernel size",
      edited(minimal, (j) => void (at(j, "spec")["model"] = { cnn: { convFilters: [8] } })),
      [["/spec/model/cnn/kernelSize", "required"]],
    ],
    [
      "checkpoints without a volume claim",
      edited(minimal, (j) => void (at(j, "spec")["checkpoints"] = { everySteps: 100 })),
      [["/spec/checkpoints/claimName", "required"]],
    ],
    [
      "an output without a volume claim",
      edited(minimal, (j) => void (at(j, "spec")["output"] = { path: "models" })),
      [["/spec/output/persistentVolumeClaim", "required"]],
    ],
    [
      "an output folder outside the claim",
      edited(full, (j) => void (at(j, "spec.output")["path"] = "models/../../etc")),
      [["/spec/output/path", "pattern"]],
    ],
    ["an absolute output folder", edited(full, (j) => void (at(j, "spec.output")["path"] = "/models")), [["/spec/output/path", "pattern"]]],
    [
      "a misspelt field",
      edited(minimal, (j) => void (at(j, "spec.workers")["replica"] = 3)),
      [["/spec/workers/replica", "additionalProperties"]],
    ],
    [
      "an unknown section",
      edited(minimal, (j) => void (at(j, "spec")["trainig"] = { epochs: 3 })),
      [["/spec/trainig", "additionalProperties"]],
    ],
    [
      "an unknown status field",
      edited(minimal, (j) => void (j["status"] = { phase: "Running", progress: 0.5 })),
      [["/status/progress", "additionalProperties"]],
    ],
    [
      "both sgd and adam",
      edited(minimal, (j) => void (at(j, "spec.training")["optimizer"] = { sgd: { learningRate: 0.1 }, adam: { learningRate: 0.001 } })),
      [["/spec/training/optimizer", "oneOf"]],
    ],
    [
      "neither sgd nor adam",
      edited(minimal, (j) => void (at(j, "spec.training")["optimizer"] = {})),
      [
        ["/spec/training/optimizer/sgd", "required"],
        ["/spec/training/optimizer/adam", "required"],
        ["/spec/training/optimizer", "oneOf"],
      ],
    ],
    [
      "both mlp and cnn",
      edited(minimal, (j) => void (at(j, "spec")["model"] = { mlp: {}, cnn: { convFilters: [8], kernelSize: 3 } })),
      [["/spec/model", "oneOf"]],
    ],
    [
      "both mlp and layers",
      edited(minimal, (j) => void (at(j, "spec")["model"] = { mlp: {}, layers: { uri: "/data/model.json" } })),
      [
        ["/spec/model/cnn", "required"],
        ["/spec/model", "oneOf"],
      ],
    ],
    [
      "a layers model without its model.json",
      edited(minimal, (j) => void (at(j, "spec")["model"] = { layers: { loss: "mean-squared-error" } })),
      [["/spec/model/layers/uri", "required"]],
    ],
    [
      "an unknown loss",
      edited(example("own-model-pvc.yaml"), (j) => void (at(j, "spec.model.layers")["loss"] = "hinge")),
      [["/spec/model/layers/loss", "enum"]],
    ],
    [
      "a model URL of another scheme",
      edited(example("own-model-url.yaml"), (j) => void (at(j, "spec.model.layers")["uri"] = "ftp://models.example.com/model.json")),
      [["/spec/model/layers/uri", "pattern"]],
    ],
    [
      "a module behind a URL",
      edited(example("own-model-image.yaml"), (j) => void (at(j, "spec.model.layers")["module"] = "https://example.com/layers.mjs")),
      [["/spec/model/layers/module", "pattern"]],
    ],
    [
      "a dataset name and a manifest (CEL)",
      edited(example("own-model-pvc.yaml"), (j) => void (at(j, "spec.dataset")["name"] = "fashion-mnist")),
      [["/spec/dataset/manifest", "x-kubernetes-validations"]],
    ],
    [
      "an evaluation manifest without a manifest (CEL)",
      edited(minimal, (j) => void (at(j, "spec")["dataset"] = { evalManifest: "/data/eval.json" })),
      [["/spec/dataset/evalManifest", "x-kubernetes-validations"]],
    ],
    [
      "a module on the storage volume (CEL)",
      edited(example("own-model-pvc.yaml"), (j) => void (at(j, "spec.model.layers")["module"] = "/data/models/layers.mjs")),
      [["/spec/model/layers/module", "x-kubernetes-validations"]],
    ],
    [
      "storage without a claim",
      edited(minimal, (j) => void (at(j, "spec")["storage"] = { mountPath: "/data" })),
      [["/spec/storage/persistentVolumeClaim", "required"]],
    ],
    [
      "a credentials Secret name with capitals",
      edited(example("own-model-url.yaml"), (j) => void (at(j, "spec")["credentialsSecret"] = "S3Credentials")),
      [["/spec/credentialsSecret", "pattern"]],
    ],
    [
      "a zero learning rate",
      edited(minimal, (j) => void (at(j, "spec.training")["optimizer"] = { adam: { learningRate: 0 } })),
      [["/spec/training/optimizer/adam/learningRate", "exclusiveMinimum"]],
    ],
    [
      "momentum 1",
      edited(minimal, (j) => void (at(j, "spec.training")["optimizer"] = { sgd: { learningRate: 0.1, momentum: 1 } })),
      [["/spec/training/optimizer/sgd/momentum", "maximum"]],
    ],
    [
      "chunks not a multiple of 4 bytes",
      edited(minimal, (j) => void (at(j, "spec.parameterServers")["chunkBytes"] = 1_000_001)),
      [["/spec/parameterServers/chunkBytes", "multipleOf"]],
    ],
    [
      "five conv layers",
      edited(minimal, (j) => void (at(j, "spec")["model"] = { cnn: { convFilters: [8, 8, 8, 8, 8], kernelSize: 3 } })),
      [["/spec/model/cnn/convFilters", "maxItems"]],
    ],
    [
      "a hidden layer of 0 units",
      edited(minimal, (j) => void (at(j, "spec")["model"] = { mlp: { hiddenUnits: [128, 0] } })),
      [["/spec/model/mlp/hiddenUnits/1", "minimum"]],
    ],
    [
      "colocated shards on the grpc data plane (CEL)",
      edited(minimal, (j) => Object.assign(at(j, "spec.parameterServers"), { placement: "colocated", dataPlane: "grpc" })),
      [["/spec/parameterServers/dataPlane", "x-kubernetes-validations"]],
    ],
    [
      "float16 on the grpc data plane (CEL)",
      edited(minimal, (j) => Object.assign(at(j, "spec.parameterServers"), { wireDtype: "float16", dataPlane: "grpc" })),
      [["/spec/parameterServers/wireDtype", "x-kubernetes-validations"]],
    ],
    [
      "colocated with a shard count unlike the workers' (CEL)",
      edited(minimal, (j) => Object.assign(at(j, "spec.parameterServers"), { placement: "colocated", replicas: 3 })),
      [["/spec/parameterServers/replicas", "x-kubernetes-validations"]],
    ],
    [
      "maxStaleness in sync mode (CEL)",
      edited(asyncJob, (j) => void (at(j, "spec.training")["mode"] = "sync")),
      [["/spec/training/maxStaleness", "x-kubernetes-validations"]],
    ],
    [
      "a cpu quantity that is not one",
      edited(full, (j) => void (at(j, "spec.workers.resources.limits")["cpu"] = "lots")),
      [["/spec/workers/resources/limits/cpu", "pattern"]],
    ],
    [
      "a GPU count of true",
      edited(minimal, (j) => void (at(j, "spec.workers.resources.limits")["nvidia.com/gpu"] = true)),
      [
        ["/spec/workers/resources/limits/nvidia.com~1gpu", "type"],
        ["/spec/workers/resources/limits/nvidia.com~1gpu", "type"],
        ["/spec/workers/resources/limits/nvidia.com~1gpu", "anyOf"],
        ["/spec/workers/resources/limits/nvidia.com~1gpu", "x-kubernetes-int-or-string"],
      ],
    ],
    [
      "a coordinator memory request that is no quantity",
      edited(full, (j) => void (at(j, "spec.coordinator.resources.requests")["memory"] = "a lot")),
      [["/spec/coordinator/resources/requests/memory", "pattern"]],
    ],
    [
      "an unknown coordinator field",
      edited(minimal, (j) => void (at(j, "spec.coordinator")["replicas"] = 2)),
      [["/spec/coordinator/replicas", "additionalProperties"]],
    ],
    [
      "a parameter-server pod label value of 64 characters",
      edited(full, (j) => void (at(j, "spec.parameterServers.template.metadata.labels")["team"] = "a".repeat(64))),
      [["/spec/parameterServers/template/metadata/labels/team", "maxLength"]],
    ],
    [
      "a pod label value of 64 characters",
      edited(minimal, (j) => void (at(j, "spec.workers.template.metadata.labels")["team"] = "a".repeat(64))),
      [["/spec/workers/template/metadata/labels/team", "maxLength"]],
    ],
    [
      "a Kueue queue name with a space",
      edited(full, (j) => void (at(j, "spec.scheduling")["queueName"] = "team vision")),
      [["/spec/scheduling/queueName", "pattern"]],
    ],
    [
      "a zero active deadline",
      edited(full, (j) => void (at(j, "spec.runPolicy")["activeDeadlineSeconds"] = 0)),
      [["/spec/runPolicy/activeDeadlineSeconds", "minimum"]],
    ],
    ["an upper-case name", edited(minimal, (j) => void (at(j, "metadata")["name"] = "Fashion")), [["/metadata/name", "pattern"]]],
    [
      "a name of 41 characters",
      edited(minimal, (j) => void (at(j, "metadata")["name"] = "a".repeat(41))),
      [["/metadata/name", "maxLength"]],
    ],
    ["another API version", edited(minimal, (j) => void (j["apiVersion"] = "trainfleet.dev/v1")), [["/apiVersion", "const"]]],
    [
      "an unknown condition type",
      edited(
        minimal,
        (j) =>
          void (j["status"] = {
            conditions: [{ type: "Exploded", status: "True", reason: "Boom", lastTransitionTime: "2026-01-02T03:04:05Z" }],
          }),
      ),
      [["/status/conditions/0/type", "enum"]],
    ],
    [
      "two conditions of one type",
      edited(
        minimal,
        (j) =>
          void (j["status"] = {
            conditions: [
              { type: "Running", status: "True", reason: "Training", lastTransitionTime: "2026-01-02T03:04:05Z" },
              { type: "Running", status: "False", reason: "Stopped", lastTransitionTime: "2026-01-02T03:04:06Z" },
            ],
          }),
      ),
      [["/status/conditions", "x-kubernetes-list-type"]],
    ],
    [
      "a transition time that is no time",
      edited(
        minimal,
        (j) =>
          void (j["status"] = { conditions: [{ type: "Running", status: "True", reason: "Training", lastTransitionTime: "yesterday" }] }),
      ),
      [["/status/conditions/0/lastTransitionTime", "format"]],
    ],
    ["an accuracy above 1", edited(minimal, (j) => void (j["status"] = { accuracy: 1.5 })), [["/status/accuracy", "maximum"]]],
  ];
  it.each(invalid)("rejects %s, for the right field", (_, job, expected) => {
    expect(violationsOf(job)).toEqual(expected);
  });
});
