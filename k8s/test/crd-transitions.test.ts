/**
 * What may change on a TrainingJob once it exists: the CRD's transition rules (x-kubernetes-
 * validations naming oldSelf), run offline as the API server runs them on an update. Every
 * field the training depends on is refused with a message that names it, adding or removing
 * an optional one included; scaling, suspending and everything about pods changes freely.
 * The fixed fields are listed here once: a transition rule on any other field fails a test, as
 * does a fixed field without one. Also the offline evaluator's own transition semantics
 * (correlation by property, map key and list-map key) and the rules' cost shape.
 */
import { readFileSync } from "node:fs";
import { celRuleProblems, celViolations, isTransitionRule } from "@trainfleet/testing/k8s/cel-rules";
import type { SchemaNode } from "@trainfleet/testing/k8s/crd-schema";
import { loadCrd, propertyNode, schemaNodes, trainingJobSchema } from "@trainfleet/testing/k8s/crd-schema";
import { createTrainingJobUpdateValidator, createTrainingJobValidator } from "@trainfleet/testing/k8s/training-job-validator";
import { readManifest, repoPath } from "@trainfleet/testing/manifests";
import { describe, expect, it } from "vitest";
import type { JsonObject, JsonValue } from "../src/json.js";
import { isJsonObject } from "../src/json.js";

const crd = loadCrd();
const schema = trainingJobSchema(crd);
const validateCreate = createTrainingJobValidator(crd);
const validateUpdate = createTrainingJobUpdateValidator(crd);
const example = (name: string) => readManifest(repoPath("k8s", "examples", name));
const full = example("full.yaml");
const minimal = example("minimal.yaml");
const ownModelPvc = example("own-model-pvc.yaml");
const ownModelImage = example("own-model-image.yaml");
const ownModelUrl = example("own-model-url.yaml");
const asyncJob = example("async.yaml");

/**
 * The fields that cannot change while the job exists, each with why (the CRD's messages say it
 * to the user). spec.image is fixed too, but may change while the job is suspended.
 */
const fixedFields = [
  "spec.image",
  "spec.model",
  "spec.dataset",
  "spec.storage",
  "spec.checkpoints",
  "spec.checkpoints.claimName",
  "spec.output",
  "spec.security.insecure",
  "spec.workers.maxWorkers",
  "spec.parameterServers.replicas",
  "spec.parameterServers.placement",
  "spec.parameterServers.dataPlane",
  "spec.parameterServers.wireDtype",
  "spec.parameterServers.chunkBytes",
  "spec.training.batchSizePerWorker",
  "spec.training.seed",
  "spec.training.optimizer",
  "spec.training.mode",
  "spec.training.shuffle",
  "spec.training.shuffleWindow",
];

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

const suspended = (job: JsonObject) => edited(job, (j) => void (at(j, "spec.runPolicy")["suspend"] = true));

/** The dotted field path of a rule: the path of the node that holds it plus its fieldPath. */
function transitionRuleFields(root: SchemaNode): string[] {
  const fields: string[] = [];
  for (const { path, node } of schemaNodes(root)) {
    const rules = node["x-kubernetes-validations"];
    for (const rule of Array.isArray(rules) ? rules.filter(isJsonObject) : []) {
      if (!isTransitionRule(String(rule["rule"]))) continue;
      fields.push(path + (typeof rule["fieldPath"] === "string" ? rule["fieldPath"] : ""));
    }
  }
  return fields.sort();
}

describe("fields fixed once a TrainingJob exists", () => {
  it("has a transition rule for exactly the fixed fields, one each", () => {
    expect(transitionRuleFields(schema)).toEqual([...fixedFields].sort());
  });

  const refused: [string, JsonObject, (job: JsonObject) => void, string][] = [
    ["the image of a running job", full, (j) => void (at(j, "spec")["image"] = "trainfleet:0.2.0"), "spec.image"],
    [
      "the image together with suspending the job",
      full,
      (j) => Object.assign(at(j, "spec"), { image: "trainfleet:0.2.0", runPolicy: { suspend: true } }),
      "spec.image",
    ],
    [
      "the image of a job being resumed",
      suspended(full),
      (j) => Object.assign(at(j, "spec"), { image: "trainfleet:0.2.0", runPolicy: {} }),
      "spec.image",
    ],
    [
      "an image set on a running job that had none (its pods run the operator's default)",
      minimal,
      (j) => void (at(j, "spec")["image"] = "trainfleet:0.2.0"),
      "spec.image",
    ],
    ["the image of a running job left out", full, (j) => void delete at(j, "spec")["image"], "spec.image"],
    ["the hidden layers", full, (j) => void (at(j, "spec.model.mlp")["hiddenUnits"] = [512, 128]), "spec.model"],
    ["an mlp for a cnn", minimal, (j) => void (at(j, "spec")["model"] = { cnn: { convFilters: [8], kernelSize: 3 } }), "spec.model"],
    [
      "the user's model.json",
      ownModelPvc,
      (j) => void (at(j, "spec.model.layers")["uri"] = "/data/models/digits/v2/model.json"),
      "spec.model",
    ],
    ["the model's loss", ownModelPvc, (j) => void (at(j, "spec.model.layers")["loss"] = "categorical-crossentropy"), "spec.model"],
    [
      "the dataset's manifest",
      ownModelPvc,
      (j) => void (at(j, "spec.dataset")["manifest"] = "/data/datasets/digits/v2.json"),
      "spec.dataset",
    ],
    [
      "a built-in dataset for one of the user's",
      minimal,
      (j) => void (at(j, "spec")["dataset"] = { manifest: "s3://data/set.json" }),
      "spec.dataset",
    ],
    ["the dataset's digest", ownModelUrl, (j) => void (at(j, "spec.dataset")["sha256"] = "0".repeat(64)), "spec.dataset"],
    [
      "the volume claim of the files",
      ownModelPvc,
      (j) => void (at(j, "spec.storage.persistentVolumeClaim")["claimName"] = "other"),
      "spec.storage",
    ],
    [
      "a volume added",
      ownModelImage,
      (j) => void (at(j, "spec")["storage"] = { persistentVolumeClaim: { claimName: "files" } }),
      "spec.storage",
    ],
    ["the volume removed", ownModelPvc, (j) => void delete at(j, "spec")["storage"], "spec.storage"],
    ["checkpoints added", minimal, (j) => void (at(j, "spec")["checkpoints"] = { claimName: "checkpoints" }), "spec.checkpoints"],
    ["checkpoints removed", full, (j) => void delete at(j, "spec")["checkpoints"], "spec.checkpoints"],
    ["the checkpoints' claim", full, (j) => void (at(j, "spec.checkpoints")["claimName"] = "elsewhere"), "spec.checkpoints.claimName"],
    ["an output added", minimal, (j) => void (at(j, "spec")["output"] = { persistentVolumeClaim: { claimName: "models" } }), "spec.output"],
    ["the output removed", full, (j) => void delete at(j, "spec")["output"], "spec.output"],
    ["the output's claim", full, (j) => void (at(j, "spec.output.persistentVolumeClaim")["claimName"] = "other"), "spec.output"],
    ["the output's folder", full, (j) => void (at(j, "spec.output")["path"] = "models/other"), "spec.output"],
    ["the output's folder left to its default", full, (j) => void delete at(j, "spec.output")["path"], "spec.output"],
    ["plaintext for mutual TLS", full, (j) => void (at(j, "spec.security")["insecure"] = true), "spec.security.insecure"],
    ["plaintext asked for later", minimal, (j) => void (at(j, "spec")["security"] = { insecure: true }), "spec.security.insecure"],
    ["maxWorkers raised", full, (j) => void (at(j, "spec.workers")["maxWorkers"] = 16), "spec.workers.maxWorkers"],
    ["maxWorkers set later", minimal, (j) => void (at(j, "spec.workers")["maxWorkers"] = 4), "spec.workers.maxWorkers"],
    ["maxWorkers removed", full, (j) => void delete at(j, "spec.workers")["maxWorkers"], "spec.workers.maxWorkers"],
    ["the shard count", full, (j) => void (at(j, "spec.parameterServers")["replicas"] = 3), "spec.parameterServers.replicas"],
    ["a shard count set later", minimal, (j) => void (at(j, "spec.parameterServers")["replicas"] = 2), "spec.parameterServers.replicas"],
    ["the shard count removed", full, (j) => void delete at(j, "spec.parameterServers")["replicas"], "spec.parameterServers.replicas"],
    [
      "dedicated shards colocated",
      minimal,
      (j) => void (at(j, "spec.parameterServers")["placement"] = "colocated"),
      "spec.parameterServers.placement",
    ],
    ["the data plane", minimal, (j) => void (at(j, "spec.parameterServers")["dataPlane"] = "grpc"), "spec.parameterServers.dataPlane"],
    ["the wire dtype", full, (j) => void (at(j, "spec.parameterServers")["wireDtype"] = "float32"), "spec.parameterServers.wireDtype"],
    ["the chunk size", full, (j) => void (at(j, "spec.parameterServers")["chunkBytes"] = 4_194_304), "spec.parameterServers.chunkBytes"],
    ["the batch per worker", full, (j) => void (at(j, "spec.training")["batchSizePerWorker"] = 256), "spec.training.batchSizePerWorker"],
    ["the seed", full, (j) => void (at(j, "spec.training")["seed"] = 8), "spec.training.seed"],
    ["the seed of a job that left it to its default", minimal, (j) => void (at(j, "spec.training")["seed"] = 2), "spec.training.seed"],
    ["the learning rate", full, (j) => void (at(j, "spec.training.optimizer.adam")["learningRate"] = 0.001), "spec.training.optimizer"],
    ["adam for sgd", full, (j) => void (at(j, "spec.training")["optimizer"] = { sgd: { learningRate: 0.1 } }), "spec.training.optimizer"],
    ["sync for async", full, (j) => void (at(j, "spec.training")["mode"] = "async"), "spec.training.mode"],
    ["a mode set later", minimal, (j) => void (at(j, "spec.training")["mode"] = "async"), "spec.training.mode"],
    ["a shuffle set later", minimal, (j) => void (at(j, "spec.training")["shuffle"] = "feistel"), "spec.training.shuffle"],
    ["the shuffle window", full, (j) => void (at(j, "spec.training")["shuffleWindow"] = 2048), "spec.training.shuffleWindow"],
  ];
  it.each(refused)("refuses a change of %s, with a message naming the field", (_, stored, change, field) => {
    const updated = edited(stored, change);
    // Valid as a new job: what refuses it is the transition rule alone.
    expect(validateCreate(updated).violations).toEqual([]);
    const { violations } = validateUpdate(stored, updated);
    expect(violations.map(({ path, keyword }) => [path, keyword])).toEqual([
      [`/${field.replaceAll(".", "/")}`, "x-kubernetes-validations"],
    ]);
    expect(violations[0]?.message).toMatch(new RegExp(`^${field.replaceAll(".", "\\.")} (cannot|changes only)`));
    expect(violations[0]?.message).toMatch(/create a new TrainingJob|suspend/);
  });

  it("lists every fixed field in docs/kubernetes.md", () => {
    const docs = readFileSync(repoPath("docs", "kubernetes.md"), "utf8");
    const section = docs.slice(docs.indexOf("### Fields fixed once a job exists"), docs.indexOf("### Upgrading the CRD"));
    expect(fixedFields.filter((field) => !section.includes(`\`${field.replace(/^spec\./, "")}\``))).toEqual([]);
  });

  it("covers every fixed field with a refused change", () => {
    expect(fixedFields.filter((field) => !refused.some(([, , , refusedField]) => refusedField === field))).toEqual([]);
  });

  const accepted: [string, JsonObject, (job: JsonObject) => void][] = [
    ["scaling the workers up (kubectl scale)", full, (j) => void (at(j, "spec.workers")["replicas"] = 8)],
    ["scaling the workers down", full, (j) => void (at(j, "spec.workers")["replicas"] = 2)],
    ["scaling a job that left its replicas to the default", minimal, (j) => void (at(j, "spec.workers")["replicas"] = 5)],
    ["suspending", full, (j) => void (at(j, "spec.runPolicy")["suspend"] = true)],
    ["resuming", suspended(full), (j) => void (at(j, "spec.runPolicy")["suspend"] = false)],
    ["suspending a job without a run policy", minimal, (j) => void (at(j, "spec.runPolicy")["suspend"] = true)],
    ["the image of a suspended job", suspended(full), (j) => void (at(j, "spec")["image"] = "trainfleet:0.2.0")],
    ["an image set on a suspended job that had none", suspended(minimal), (j) => void (at(j, "spec")["image"] = "trainfleet:0.2.0")],
    [
      "the rest of the run policy",
      full,
      (j) =>
        Object.assign(at(j, "spec.runPolicy"), {
          backoffLimit: 6,
          activeDeadlineSeconds: 172_800,
          ttlSecondsAfterFinished: 60,
          cleanPodPolicy: "All",
        }),
    ],
    ["scheduling", full, (j) => void (at(j, "spec")["scheduling"] = { priorityClassName: "urgent", queueName: "team-b" })],
    [
      "the workers' bounds and deadlines but maxWorkers",
      full,
      (j) =>
        Object.assign(at(j, "spec.workers"), { minWorkers: 1, pauseTimeoutSeconds: 60, stepDeadlineMs: 30_000, maxMissedDeadlines: 5 }),
    ],
    ["how long to train", full, (j) => Object.assign(at(j, "spec.training"), { epochs: 8, maxSteps: 40_000, evalSamples: 5000 })],
    ["the staleness bound", asyncJob, (j) => void (at(j, "spec.training")["maxStaleness"] = 4)],
    ["how often to checkpoint", full, (j) => void (at(j, "spec.checkpoints")["everySteps"] = 1000)],
    ["the credentials Secret (a rotation)", ownModelUrl, (j) => void (at(j, "spec")["credentialsSecret"] = "s3-credentials-2")],
    [
      "every role's resources and template",
      full,
      (j) => {
        for (const role of ["coordinator", "workers", "parameterServers"]) {
          at(j, `spec.${role}.resources.limits`)["memory"] = "16Gi";
          at(j, `spec.${role}.template.spec`)["nodeSelector"] = { pool: "big" };
        }
      },
    ],
    ["a default spelt out", minimal, (j) => Object.assign(at(j, "spec"), { dataset: { name: "fashion-mnist" }, training: { seed: 1 } })],
    ["labels", full, (j) => void (at(j, "metadata.labels")["team"] = "vision")],
    ["the status (the operator's patches)", full, (j) => void (j["status"] = { phase: "Running", replicas: 4, trainingReplicas: 4 })],
    ["nothing", full, () => {}],
  ];
  it.each(accepted)("accepts %s", (_, stored, change) => {
    expect(validateUpdate(stored, edited(stored, change)).violations).toEqual([]);
  });

  it("still validates the new object in full on an update", () => {
    const { violations } = validateUpdate(
      full,
      edited(full, (j) => void (at(j, "spec.workers")["replicas"] = 9)),
    );
    expect(violations.map(({ path, keyword }) => [path, keyword])).toEqual([["/spec/workers/replicas", "x-kubernetes-validations"]]);
  });

  it("runs no transition rule on a create", () => {
    // A create has no oldSelf: were the rules run, every one would fail to evaluate and throw.
    expect(celViolations(schema, validateCreate(full).defaulted)).toEqual([]);
  });
});

describe("the transition rules' cost", () => {
  // The API server estimates each rule's worst-case cost when the CRD is written and refuses one
  // above 10^7 (10^8 for the whole CRD); at run time a rule may spend 10^6. A rule that does not
  // iterate costs about the size of what it compares; these compare one typed field each.
  it("compare one field each, of the two shapes the CRD uses, without iterating", () => {
    const shapes = [
      /^self == oldSelf$/,
      /^has\(self\.(\w+)\) == has\(oldSelf\.\1\) && \(!has\(self\.\1\) \|\| self\.\1 == oldSelf\.\1\)$/,
      /^has\(self\.(\w+)\) == has\(oldSelf\.\1\)$/,
    ];
    const exceptions = new Set(["spec.image", "spec.security.insecure"]);
    const odd: string[] = [];
    for (const { path, node } of schemaNodes(schema)) {
      const rules = node["x-kubernetes-validations"];
      for (const rule of Array.isArray(rules) ? rules.filter(isJsonObject) : []) {
        const text = String(rule["rule"]);
        const field = path + String(rule["fieldPath"] ?? "");
        if (isTransitionRule(text) && !exceptions.has(field) && !shapes.some((shape) => shape.test(text))) odd.push(`${field}: ${text}`);
      }
    }
    expect(odd).toEqual([]);
    expect(celRuleProblems(schema)).toEqual([]);
  });

  it("compare no free-form value (x-kubernetes-preserve-unknown-fields has no size the estimate can use)", () => {
    const freeForm = fixedFields.filter((field) => {
      const node = propertyNode(schema, field);
      return node === undefined || [...schemaNodes(node)].some(({ node: below }) => below["x-kubernetes-preserve-unknown-fields"] === true);
    });
    expect(freeForm).toEqual([]);
  });
});

describe("the offline evaluator's transition rules", () => {
  const grows = { rule: "self >= oldSelf", message: "size may only grow" };
  const sample: SchemaNode = {
    type: "object",
    properties: {
      volumes: {
        type: "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        items: {
          type: "object",
          required: ["name"],
          properties: { name: { type: "string" }, size: { type: "integer", "x-kubernetes-validations": [grows] } },
        },
      },
      quotas: { type: "object", additionalProperties: { type: "integer", "x-kubernetes-validations": [grows] } },
      tags: { type: "array", items: { type: "object", properties: { size: { type: "integer", "x-kubernetes-validations": [grows] } } } },
    },
  };

  it("correlates list-map items by their keys, map values by key, and skips what has no old value", () => {
    const old = {
      volumes: [
        { name: "a", size: 5 },
        { name: "b", size: 5 },
      ],
      quotas: { cpu: 4, gpu: 2 },
    };
    const updated = {
      volumes: [
        { name: "c", size: 1 },
        { name: "b", size: 3 },
        { name: "a", size: 6 },
      ],
      quotas: { cpu: 2, gpu: 2, mem: 1 },
    };
    expect(celViolations(sample, updated, old).map(({ path }) => path)).toEqual(["/volumes/1/size", "/quotas/cpu"]);
    expect(celViolations(sample, updated)).toEqual([]);
  });

  it("refuses oldSelf below a list whose items have no identity", () => {
    expect(celRuleProblems(sample)).toEqual([
      "tags[].size: self >= oldSelf: oldSelf below a list that is not x-kubernetes-list-type map has nothing to correlate with",
    ]);
  });

  it("refuses oldSelf.a.b that names no field", () => {
    const misspelt: SchemaNode = {
      type: "object",
      properties: {
        spec: {
          type: "object",
          properties: { seed: { type: "integer" } },
          "x-kubernetes-validations": [{ rule: "has(self.seed) == has(oldSelf.sed)" }],
        },
      },
    };
    expect(celRuleProblems(misspelt)).toEqual(["spec: has(self.seed) == has(oldSelf.sed): oldSelf.sed is not a field of the schema"]);
  });
});
