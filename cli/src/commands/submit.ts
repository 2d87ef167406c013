/**
 * `trainfleet submit FILE`: creates the TrainingJobs of a YAML file (one or more documents), as
 * `kubectl create -f` would, after checking each one here first with what the coordinator will
 * check: the TrainingJob is converted to the JobSpec the operator hands the coordinator
 * (jobSpecFromTrainingJob) and validated by the coordinator's own resolveJobSpec, and an error
 * names the TrainingJob field (spec.parameterServers.replicas, not the proto's
 * parameterServers.shards). Unknown fields and values of the wrong type are refused too (the
 * API server's strict field validation would refuse them; the coordinator would never see
 * them). Nothing is created unless every document passes.
 *
 * What only the API server checks (the CRD's ranges, CEL rules and defaults) is not repeated
 * here; its refusal (422) is shown with its message.
 */
import { readFileSync } from "node:fs";
import { ScalarType, create } from "@bufbuild/protobuf";
import type { DescField } from "@bufbuild/protobuf";
import { resolveJobSpec } from "@trainfleet/coordinator";
import { apiVersion, crdEnums, isJsonObject, jobSpecFromTrainingJob, kind, kubernetesOnly, protoField, protoToCrd, valueAt } from "@trainfleet/operator/resource";
import type { JsonObject, JsonValue } from "@trainfleet/operator/resource";
import { Code, JobSpecSchema, TrainfleetError, codeName, invalidField } from "@trainfleet/proto";
import type { Command } from "../command.js";
import { requireString } from "../command.js";
import { commonFlags } from "../common-flags.js";
import { UsageError } from "../flags.js";
import { apiError, connect, isApiStatus, kubeFlags, resourceName, trainingJobsResource } from "../kube-client.js";

export const submitCommand: Command = {
  name: "submit",
  usage: "trainfleet submit FILE [--namespace NS] [--dry-run]",
  summary:
    "Creates the TrainingJobs in a YAML file (FILE, or - for standard input; one or more documents) on the Kubernetes cluster of your kubeconfig, as kubectl create -f does. Each is checked here first, with the coordinator's own validation, and nothing is created unless all pass. The namespace is metadata.namespace, else --namespace, else the context's.",
  positionals: ["file"],
  flags: {
    file: { kind: "string", help: "The YAML file of TrainingJobs, or - for standard input (required; may be given as the first argument)." },
    "dry-run": { kind: "boolean", help: "Only check the TrainingJobs; create nothing (needs no cluster)." },
    ...kubeFlags,
    "log-level": commonFlags["log-level"]!,
  },
  async run({ values, env }) {
    const file = requireString(values, "file");
    const namespaceFlag = values.namespace as string | undefined;
    const jobs = await readTrainingJobs(file);
    // Each document checked, and where it goes known, before anything is created.
    const seen = new Set<string>();
    for (const job of jobs) {
      const metaNamespace = job.namespace;
      if (namespaceFlag !== undefined && metaNamespace !== undefined && metaNamespace !== namespaceFlag) {
        throw new UsageError(
          `${job.where}: the namespace from the provided object "${metaNamespace}" does not match the namespace "${namespaceFlag}" given with --namespace: drop --namespace, or make them agree`,
        );
      }
      const key = `${metaNamespace ?? namespaceFlag ?? ""}/${job.name}`;
      if (seen.has(key)) throw new UsageError(`${job.where}: ${resourceName}/${job.name} appears twice in ${file}`);
      seen.add(key);
    }
    if (values["dry-run"] === true) {
      for (const job of jobs) process.stdout.write(`${resourceName}/${job.name} created (dry run)\n`);
      return 0;
    }
    const target = await connect(values, env);
    let failed = 0;
    for (const job of jobs) {
      const namespace = job.namespace ?? target.namespace;
      const metadata = isJsonObject(job.object["metadata"]) ? job.object["metadata"] : {};
      const body = { ...job.object, metadata: { ...metadata, namespace } };
      try {
        await target.api.createNamespacedCustomObject({ ...trainingJobsResource, namespace, body });
        process.stdout.write(`${resourceName}/${job.name} created\n`);
      } catch (caught) {
        const error = apiError(target, `cannot create ${resourceName}/${job.name} in namespace ${namespace}`, caught);
        const reported = isApiStatus(error, 409)
          ? new TrainfleetError(
              Code.ALREADY_EXISTS,
              `${resourceName}/${job.name} already exists in namespace ${namespace}: delete it first (kubectl delete ${kind.toLowerCase()} ${job.name} -n ${namespace}), or give this one another metadata.name`,
              { cause: error },
            )
          : error;
        if (jobs.length === 1) throw reported;
        // As kubectl create -f: the other documents are still created; each failure is said.
        failed++;
        process.stderr.write(`trainfleet: ${reported.message} (${codeName(reported.code)})\n`);
      }
    }
    return failed === 0 ? 0 : 1;
  },
};

interface TrainingJobDocument {
  object: JsonObject;
  name: string;
  namespace: string | undefined;
  /** The file and document, for messages. */
  where: string;
}

async function readTrainingJobs(file: string): Promise<TrainingJobDocument[]> {
  let text: string;
  try {
    text = readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(code === "ENOENT" ? `${file}: no such file` : `cannot read ${file}: ${(error as Error).message}`);
  }
  const { parseAllDocuments } = await import("yaml");
  const parsed = parseAllDocuments(text);
  const documents = Array.isArray(parsed) ? parsed : [];
  const jobs: TrainingJobDocument[] = [];
  documents.forEach((document, index) => {
    const where = documents.length === 1 ? file : `${file}, document ${index + 1}`;
    const error = document.errors[0];
    if (error !== undefined) throw new UsageError(`${where}: not valid YAML: ${error.message}`);
    const value = document.toJS() as unknown;
    // An empty document (a trailing ---, a file of comments) is skipped, as kubectl does.
    if (value === null || value === undefined) return;
    jobs.push(checkDocument(value, where));
  });
  if (jobs.length === 0) throw new UsageError(`${file} holds no TrainingJob (no YAML documents)`);
  return jobs;
}

function checkDocument(value: unknown, where: string): TrainingJobDocument {
  if (!isJsonObject(value)) throw new UsageError(`${where}: not a TrainingJob: expected a YAML mapping (apiVersion, kind, metadata, spec)`);
  const object = value as JsonObject;
  if (object["apiVersion"] !== apiVersion || object["kind"] !== kind) {
    throw new UsageError(
      `${where}: not a TrainingJob: apiVersion ${JSON.stringify(object["apiVersion"] ?? null)}, kind ${JSON.stringify(object["kind"] ?? null)}; submit creates apiVersion ${apiVersion}, kind ${kind} only (use kubectl for other objects)`,
    );
  }
  const metadata = object["metadata"];
  const name = isJsonObject(metadata) ? metadata["name"] : undefined;
  if (typeof name !== "string" || name === "") throw new UsageError(`${where}: metadata.name is required (the job's name, a DNS label)`);
  const namespace = isJsonObject(metadata) ? metadata["namespace"] : undefined;
  if (namespace !== undefined && (typeof namespace !== "string" || !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace))) {
    throw new UsageError(`${where}: ${resourceName}/${name}: metadata.namespace: ${JSON.stringify(namespace)} is not a namespace name (a DNS label)`);
  }
  try {
    checkTrainingJob(object);
  } catch (error) {
    const failure = TrainfleetError.from(error, Code.INVALID_ARGUMENT);
    throw new TrainfleetError(Code.INVALID_ARGUMENT, `${where}: ${resourceName}/${name}: ${failure.message}`, failure.field === undefined ? { cause: error } : { field: failure.field, cause: error });
  }
  return { object, name, namespace: namespace as string | undefined, where };
}

// ---- The check: the TrainingJob as the operator will convert it, validated as the coordinator will.

const crdPathOfProto = new Map(protoToCrd.map(([proto, crd]) => [proto, crd]));
const knownCrdPaths = new Set(protoToCrd.map(([, crd]) => crd));
const topLevelFields = ["apiVersion", "kind", "metadata", "spec", "status"];

function underKubernetesOnly(path: string): boolean {
  return kubernetesOnly.some((prefix) => path === prefix || path.startsWith(`${prefix}.`));
}

/** The field names a TrainingJob allows directly under `path`. */
function knownChildren(path: string): string[] {
  const children = [...knownCrdPaths, ...kubernetesOnly].filter((candidate) => candidate.startsWith(`${path}.`) && !candidate.slice(path.length + 1).includes("."));
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
    if (typeof value !== "string" || !accepted.includes(value)) throw invalidField(crd, `${JSON.stringify(value)} is not one of ${accepted.join(", ")}`);
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

/** One and only one case of each oneof (model: mlp or cnn; optimizer: sgd or adam), as the CRD's oneOf. */
function checkOneofs(object: JsonObject, proto: string, crd: string, field: DescField): void {
  if (field.fieldKind !== "message") return;
  for (const oneof of field.message.oneofs) {
    const cases = oneof.fields.map((member) => crdPathOfProto.get(`${proto}.${member.jsonName}`)).filter((path): path is string => path !== undefined);
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
export function checkTrainingJob(object: JsonObject): void {
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
  if (typeof spec["image"] !== "string" || spec["image"] === "") throw invalidField("spec.image", "required: the trainfleet container image the operator runs (e.g. trainfleet:0.1.0)");
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
