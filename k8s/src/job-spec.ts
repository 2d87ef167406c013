/**
 * How a TrainingJob's fields correspond to the JobSpec proto (proto/proto/trainfleet/v1/job.proto):
 * an explicit table, checked both ways by k8s/test/crd-jobspec.test.ts, and the conversion the
 * operator makes (TrainingJob -> JobSpec) for the coordinator it starts.
 */

import type { DescField, DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import type { JobSpec } from "@trainfleet/proto";
import { DataPlane, JobSpecSchema, Loss, Placement, Shuffle, TrainingMode, WireDtype, WorkersSpecSchema } from "@trainfleet/proto";
import type { JsonObject, JsonValue } from "./json.js";
import { isJsonObject, valueAt } from "./json.js";
import type { TrainingJob } from "./training-job.js";

/** Every JobSpec field (proto JSON names, dotted) but those pinned when resolved, and the TrainingJob field that carries it. */
export const protoToCrd: ReadonlyArray<readonly [proto: string, crd: string]> = [
  ["jobId", "metadata.name"],
  ["model", "spec.model"],
  ["model.mlp", "spec.model.mlp"],
  ["model.mlp.hiddenUnits", "spec.model.mlp.hiddenUnits"],
  ["model.cnn", "spec.model.cnn"],
  ["model.cnn.convFilters", "spec.model.cnn.convFilters"],
  ["model.cnn.kernelSize", "spec.model.cnn.kernelSize"],
  ["model.cnn.denseUnits", "spec.model.cnn.denseUnits"],
  ["model.layers", "spec.model.layers"],
  ["model.layers.uri", "spec.model.layers.uri"],
  ["model.layers.sha256", "spec.model.layers.sha256"],
  ["model.layers.loss", "spec.model.layers.loss"],
  ["model.layers.module", "spec.model.layers.module"],
  ["dataset", "spec.dataset"],
  ["dataset.name", "spec.dataset.name"],
  ["dataset.manifest", "spec.dataset.manifest"],
  ["dataset.evalManifest", "spec.dataset.evalManifest"],
  ["dataset.sha256", "spec.dataset.sha256"],
  ["training", "spec.training"],
  ["training.epochs", "spec.training.epochs"],
  ["training.batchSizePerWorker", "spec.training.batchSizePerWorker"],
  ["training.maxSteps", "spec.training.maxSteps"],
  ["training.seed", "spec.training.seed"],
  ["training.evalSamples", "spec.training.evalSamples"],
  ["training.mode", "spec.training.mode"],
  ["training.maxStaleness", "spec.training.maxStaleness"],
  ["training.shuffle", "spec.training.shuffle"],
  ["training.shuffleWindow", "spec.training.shuffleWindow"],
  ["training.optimizer", "spec.training.optimizer"],
  ["training.optimizer.sgd", "spec.training.optimizer.sgd"],
  ["training.optimizer.sgd.learningRate", "spec.training.optimizer.sgd.learningRate"],
  ["training.optimizer.sgd.momentum", "spec.training.optimizer.sgd.momentum"],
  ["training.optimizer.adam", "spec.training.optimizer.adam"],
  ["training.optimizer.adam.learningRate", "spec.training.optimizer.adam.learningRate"],
  ["training.optimizer.adam.beta1", "spec.training.optimizer.adam.beta1"],
  ["training.optimizer.adam.beta2", "spec.training.optimizer.adam.beta2"],
  ["training.optimizer.adam.epsilon", "spec.training.optimizer.adam.epsilon"],
  ["workers", "spec.workers"],
  ["workers.replicas", "spec.workers.replicas"],
  ["workers.minWorkers", "spec.workers.minWorkers"],
  ["workers.maxWorkers", "spec.workers.maxWorkers"],
  ["workers.pauseTimeoutSeconds", "spec.workers.pauseTimeoutSeconds"],
  ["workers.stepDeadlineMs", "spec.workers.stepDeadlineMs"],
  ["workers.maxMissedDeadlines", "spec.workers.maxMissedDeadlines"],
  ["parameterServers", "spec.parameterServers"],
  ["parameterServers.shards", "spec.parameterServers.replicas"],
  ["parameterServers.chunkBytes", "spec.parameterServers.chunkBytes"],
  ["parameterServers.dataPlane", "spec.parameterServers.dataPlane"],
  ["parameterServers.placement", "spec.parameterServers.placement"],
  ["parameterServers.wireDtype", "spec.parameterServers.wireDtype"],
  ["checkpoints", "spec.checkpoints"],
  ["checkpoints.everySteps", "spec.checkpoints.everySteps"],
];

/**
 * JobSpec fields (with everything under them) that no TrainingJob sets: what the user's files
 * hold, pinned by the coordinator when it reads the model and the manifests as it resolves the
 * job, so that every role checks the files against the same facts.
 */
export const pinnedWhenResolved: readonly string[] = ["model.layers.artifact", "dataset.facts"];

/** The CRD's enum strings and the proto enum values they stand for (UNSPECIFIED has none). */
export const crdEnums: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  "spec.model.layers.loss": {
    "sparse-categorical-crossentropy": Loss.SPARSE_CATEGORICAL_CROSSENTROPY,
    "categorical-crossentropy": Loss.CATEGORICAL_CROSSENTROPY,
    "mean-squared-error": Loss.MEAN_SQUARED_ERROR,
    "binary-crossentropy": Loss.BINARY_CROSSENTROPY,
  },
  "spec.parameterServers.dataPlane": { tcp: DataPlane.TCP, grpc: DataPlane.GRPC },
  "spec.parameterServers.placement": { dedicated: Placement.DEDICATED, colocated: Placement.COLOCATED },
  "spec.parameterServers.wireDtype": { float32: WireDtype.FLOAT32, bfloat16: WireDtype.BFLOAT16, float16: WireDtype.FLOAT16 },
  "spec.training.mode": { sync: TrainingMode.SYNC, async: TrainingMode.ASYNC },
  "spec.training.shuffle": { global: Shuffle.GLOBAL, block: Shuffle.BLOCK, feistel: Shuffle.FEISTEL },
};

/** TrainingJob fields that JobSpec does not have yet: add each to protoToCrd when the proto gains it. */
export const pendingInProto: readonly string[] = [];

/** TrainingJob fields (with everything under them) about pods, not training: the operator's alone. */
export const kubernetesOnly: readonly string[] = [
  "spec.image",
  "spec.coordinator",
  "spec.workers.resources",
  "spec.workers.template",
  "spec.parameterServers.resources",
  "spec.parameterServers.template",
  "spec.checkpoints.claimName",
  "spec.output",
  "spec.storage",
  "spec.credentialsSecret",
  "spec.runPolicy",
  "spec.scheduling",
  "spec.security",
];

/** The descriptor of a JobSpec field by its dotted JSON-name path; throws if there is none. */
export function protoField(path: string): DescField {
  let message: DescMessage | undefined = JobSpecSchema;
  let field: DescField | undefined;
  for (const name of path.split(".")) {
    field = message?.fields.find((candidate) => candidate.jsonName === name);
    if (field === undefined) throw new Error(`JobSpec has no field ${path}`);
    message = field.fieldKind === "message" ? field.message : undefined;
  }
  if (field === undefined) throw new Error(`empty proto path`);
  return field;
}

/** Every field path of JobSpec, message fields included, parents first. */
export function protoFieldPaths(message: DescMessage = JobSpecSchema, prefix = ""): string[] {
  return message.fields.flatMap((field) => {
    const path = prefix === "" ? field.jsonName : `${prefix}.${field.jsonName}`;
    return field.fieldKind === "message" ? [path, ...protoFieldPaths(field.message, path)] : [path];
  });
}

type Init = Record<string, unknown>;

/** The init object that holds `field`'s value inside `parent`, created on the way (oneofs as {case, value}). */
function child(parent: Init, field: DescField): Init {
  if (field.oneof !== undefined) {
    const current = parent[field.oneof.localName];
    if (isInit(current) && current["case"] === field.localName && isInit(current["value"])) return current["value"];
    const value: Init = {};
    parent[field.oneof.localName] = { case: field.localName, value };
    return value;
  }
  const current = parent[field.localName];
  if (isInit(current)) return current;
  const value: Init = {};
  parent[field.localName] = value;
  return value;
}

function isInit(value: unknown): value is Init {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Sets the JobSpec field at a proto path in an init object; `value` undefined only creates the message. */
export function setProtoField(init: Init, path: string, value: unknown): void {
  const names = path.split(".");
  let parent = init;
  for (let i = 0; i < names.length; i++) {
    const field = protoField(names.slice(0, i + 1).join("."));
    const last = i === names.length - 1;
    if (!last || (value === undefined && field.fieldKind === "message")) {
      parent = child(parent, field);
    } else if (field.oneof !== undefined) {
      parent[field.oneof.localName] = { case: field.localName, value };
    } else {
      parent[field.localName] = value;
    }
  }
}

/** The JobSpec a TrainingJob asks for, as the operator hands it to the coordinator. */
export function jobSpecFromTrainingJob(trainingJob: JsonObject): MessageInitShape<typeof JobSpecSchema> {
  const init: Init = {};
  for (const [proto, crd] of protoToCrd) {
    const value: JsonValue | undefined = valueAt(trainingJob, crd);
    if (value === undefined) continue;
    const field = protoField(proto);
    if (field.fieldKind === "message") {
      if (isJsonObject(value)) setProtoField(init, proto, undefined);
      continue;
    }
    const enumValues = crdEnums[crd];
    if (enumValues !== undefined) {
      const number = typeof value === "string" ? enumValues[value] : undefined;
      if (number === undefined) throw new Error(`${crd}: no proto enum value for ${JSON.stringify(value)}`);
      setProtoField(init, proto, number);
    } else {
      setProtoField(init, proto, value);
    }
  }
  return init as MessageInitShape<typeof JobSpecSchema>;
}

/**
 * The JobSpec the operator hands a job's coordinator. The global batch is fixed when the job
 * starts (status trainingReplicas), so a coordinator created again after scaling keeps it;
 * with maxWorkers unset, scaling up beyond the first replicas trains every worker instead of
 * keeping standbys. The gang (gang.ts) reads what the coordinator will wait for from it.
 */
export function coordinatorJobSpec(job: TrainingJob, trainingReplicas: number): JobSpec {
  const spec = create(JobSpecSchema, jobSpecFromTrainingJob(job as unknown as JsonObject));
  const workers = (spec.workers ??= create(WorkersSpecSchema));
  workers.replicas = trainingReplicas;
  const colocated = job.spec.parameterServers?.placement === "colocated";
  if (!colocated && job.spec.workers?.maxWorkers === undefined) workers.maxWorkers = 1024;
  return spec;
}
