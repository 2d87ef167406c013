/**
 * Checks a TrainingJob as the coordinator will check it, before anything runs: converted to the
 * JobSpec the operator hands the coordinator (jobSpecFromTrainingJob) and validated by the
 * coordinator's own resolveJobSpec, with errors naming the TrainingJob's field
 * (spec.parameterServers.replicas, not the proto's parameterServers.shards). Unknown fields and
 * values of the wrong type are refused too (the API server's strict field validation would
 * refuse them). `trainfleet submit` runs it on each document, the operator on each new job.
 * What only the API server checks (the CRD's ranges, CEL rules, defaults) is not repeated.
 */

import type { DescField } from "@bufbuild/protobuf";
import { create, ScalarType } from "@bufbuild/protobuf";
import { Code, invalidField, JobSpecSchema, TrainfleetError } from "@trainfleet/proto";
import { resolveJobSpec } from "@trainfleet/spec";
import { crdEnums, jobSpecFromTrainingJob, kubernetesOnly, protoField, protoToCrd } from "./job-spec.js";
import type { JsonObject, JsonValue } from "./json.js";
import { isJsonObject, valueAt } from "./json.js";

const crdPathOfProto = new Map(protoToCrd.map(([proto, crd]) => [proto, crd]));
const knownCrdPaths = new Set(protoToCrd.map(([, crd]) => crd));
const topLevelFields = ["apiVersion", "kind", "metadata", "spec", "status"];

function underKubernetesOnly(path: string): boolean {
  return kubernetesOnly.some((prefix) => path === prefix || path.startsWith(`${prefix}.`));
}

/** The field names a TrainingJob allows directly under `path`. */
function knownChildren(path: string): string[] {
  const children = [...knownCrdPaths, ...kubernetesOnly].filter(
    (candidate) => candidate.startsWith(`${path}.`) && !candidate.slice(path.length + 1).includes("."),
  );
  return children.map((child) => child.slice(path.length + 1));
}

function unknownFields(value: JsonValue | undefined, path: string, found: string[]): void {
  if (!isJsonObject(value)) return;
  for (const key of Object.keys(value)) {
    const child = `${path}.${key}`;
    if (underKubernetesOnly(child)) continue;
    if (!knownCrdPaths.has(child)) found.push(child);
    else unknownFields(value[key], child, found);
  }
}

function scalarProblem(value: JsonValue, scalar: ScalarType): string | undefined {
  switch (scalar) {
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return typeof value === "number" && Number.isFinite(value) ? undefined : "a number";
    case ScalarType.STRING:
      return typeof value === "string" ? undefined : "a string";
    case ScalarType.BOOL:
      return typeof value === "boolean" ? undefined : "true or false";
    case ScalarType.UINT32:
    case ScalarType.UINT64:
    case ScalarType.FIXED32:
    case ScalarType.FIXED64:
      return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? undefined : "a whole number, 0 or more";
    default:
      return typeof value === "number" && Number.isSafeInteger(value) ? undefined : "a whole number";
  }
}

function checkType(crd: string, value: JsonValue, field: DescField): void {
  const got = `got ${JSON.stringify(value)}`;
  if (field.fieldKind === "message") {
    if (!isJsonObject(value)) throw invalidField(crd, `expected an object, ${got}`);
  } else if (field.fieldKind === "enum") {
    const accepted = Object.keys(crdEnums[crd] ?? {});
    if (typeof value !== "string" || !accepted.includes(value))
      throw invalidField(crd, `${JSON.stringify(value)} is not one of ${accepted.join(", ")}`);
  } else if (field.fieldKind === "scalar") {
    const expected = scalarProblem(value, field.scalar);
    if (expected !== undefined) throw invalidField(crd, `expected ${expected}, ${got}`);
  } else if (field.fieldKind === "list" && field.listKind === "scalar") {
    if (!Array.isArray(value)) throw invalidField(crd, `expected a list, ${got}`);
    value.forEach((element, i) => {
      const expected = scalarProblem(element, field.scalar);
      if (expected !== undefined) throw invalidField(`${crd}[${i}]`, `expected ${expected}, got ${JSON.stringify(element)}`);
    });
  }
}

/** One and only one case of each oneof (model: mlp, cnn or layers; optimizer: sgd or adam), as the CRD's oneOf. */
function checkOneofs(object: JsonObject, proto: string, crd: string, field: DescField): void {
  if (field.fieldKind !== "message") return;
  for (const oneof of field.message.oneofs) {
    const cases = oneof.fields
      .map((member) => crdPathOfProto.get(`${proto}.${member.jsonName}`))
      .filter((path): path is string => path !== undefined);
    const given = cases.filter((path) => valueAt(object, path) !== undefined);
    const short = (paths: string[]) => paths.map((path) => path.slice(crd.length + 1)).join(" or ");
    if (given.length > 1) throw invalidField(crd, `give one of ${short(cases)}, not both`);
    if (given.length === 0) throw invalidField(crd, `give one of ${short(cases)}`);
  }
}

/** Proto spellings in the coordinator's messages, and the TrainingJob's (parameterServers.shards -> parameterServers.replicas, DATA_PLANE_TCP -> tcp). */
const protoSpellings: ReadonlyArray<readonly [RegExp, string]> = [
  ...protoToCrd
    .filter(([proto, crd]) => crd.startsWith("spec.") && crd.slice("spec.".length) !== proto)
    .map(([proto, crd]) => [new RegExp(`\\b${proto.replace(/\./g, "\\.")}\\b`, "g"), crd.slice("spec.".length)] as const),
  ...Object.entries(crdEnums).flatMap(([crd, values]) => {
    const proto = protoToCrd.find(([, path]) => path === crd)?.[0];
    const field = proto === undefined ? undefined : protoField(proto);
    if (field?.fieldKind !== "enum") return [];
    return field.enum.values.flatMap((value) => {
      const spelling = Object.entries(values).find(([, number]) => number === value.number)?.[0];
      return spelling === undefined ? [] : [[new RegExp(`\\b${value.name}\\b`, "g"), spelling] as const];
    });
  }),
];

function inTrainingJobTerms(text: string): string {
  return protoSpellings.reduce((result, [pattern, spelling]) => result.replace(pattern, spelling), text);
}

/** The TrainingJob field a JobSpec error names ("spec.parameterServers.shards" -> "spec.parameterServers.replicas", "spec.jobId" -> "metadata.name"). */
function trainingJobField(field: string): string {
  const match = /^spec\.([A-Za-z.]+)((?:\[\d+\])?)$/.exec(field);
  const crd = match === null ? undefined : crdPathOfProto.get(match[1]!);
  return crd === undefined ? field : `${crd}${match![2]}`;
}

/** Throws INVALID_ARGUMENT naming the TrainingJob field, for the first thing wrong with `object`. */
export interface CheckOptions {
  /** spec.image may be left out (trainfleet submit: the operator fills in its --default-job-image). The operator checks the job with its image filled in. */
  imageOptional?: boolean;
}

export function checkTrainingJob(object: JsonObject, options: CheckOptions = {}): void {
  const extraTop = Object.keys(object).filter((key) => !topLevelFields.includes(key));
  if (extraTop.length > 0) throw invalidField(extraTop[0]!, `unknown field; a TrainingJob has ${topLevelFields.join(", ")}`);
  const spec = object["spec"];
  if (!isJsonObject(spec)) throw invalidField("spec", "required: the job (at least spec.image)");
  const unknown: string[] = [];
  unknownFields(spec, "spec", unknown);
  if (unknown.length > 0) {
    const first = unknown[0]!;
    const parent = first.slice(0, first.lastIndexOf("."));
    const more = unknown.length > 1 ? ` (and ${unknown.slice(1).join(", ")})` : "";
    throw invalidField(first, `unknown field${more}; ${parent} has ${knownChildren(parent).join(", ")}`);
  }
  const image = spec["image"];
  if (image === undefined ? options.imageOptional !== true : typeof image !== "string" || image === "")
    throw invalidField(
      "spec.image",
      "required: the container image every pod of the job runs (e.g. registry.example.com/team/trainfleet:0.1.0); set it, or start the operator with --default-job-image (the chart's jobImage value)",
    );
  for (const [proto, crd] of protoToCrd) {
    if (!crd.startsWith("spec.")) continue;
    const value = valueAt(object, crd);
    if (value === undefined) continue;
    const field = protoField(proto);
    checkType(crd, value, field);
    checkOneofs(object, proto, crd, field);
  }
  let init: ReturnType<typeof jobSpecFromTrainingJob>;
  try {
    init = jobSpecFromTrainingJob(object);
  } catch (error) {
    throw new TrainfleetError(Code.INVALID_ARGUMENT, (error as Error).message, { cause: error });
  }
  try {
    resolveJobSpec(create(JobSpecSchema, init));
  } catch (error) {
    if (!(error instanceof TrainfleetError) || error.field === undefined) throw error;
    const field = trainingJobField(error.field);
    const problem = error.message.startsWith(`${error.field}: `) ? error.message.slice(error.field.length + 2) : error.message;
    throw invalidField(field, inTrainingJobTerms(problem));
  }
}
