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
 * here; its refusal (422) is shown with its message. With --read-files, a job's own model
 * and data are read too where they are URLs (checkUserFiles).
 */
import { readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import type { JsonObject } from "@trainfleet/k8s/resource";
import { apiVersion, checkTrainingJob, isJsonObject, jobSpecFromTrainingJob, kind } from "@trainfleet/k8s/resource";
import { Code, codeName, JobSpecSchema, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { silentLogger } from "@trainfleet/runtime";
import { dataShape, parameterLayout, resolveJobSpec } from "@trainfleet/spec";
import type { Command } from "../command.js";
import { requireString } from "../command.js";
import { commonFlags } from "../common-flags.js";
import { UsageError } from "../flags.js";
import { apiError, connect, isApiStatus, kubeFlags, resourceName, trainingJobsResource } from "../kube-client.js";
import { pinArtifacts } from "../model-files.js";

export const submitCommand: Command = {
  name: "submit",
  usage: "trainfleet submit FILE [--namespace NS] [--dry-run] [--read-files]",
  summary:
    "Creates the TrainingJobs in a YAML file (FILE, or - for standard input; one or more documents) on the Kubernetes cluster of your kubeconfig, as kubectl create -f does. Each is checked here first, with the coordinator's own validation, and nothing is created unless all pass. The namespace is metadata.namespace, else --namespace, else the context's.",
  positionals: ["file"],
  flags: {
    file: {
      kind: "string",
      help: "The YAML file of TrainingJobs, or - for standard input (required; may be given as the first argument).",
    },
    "dry-run": { kind: "boolean", help: "Only check the TrainingJobs; create nothing (needs no cluster)." },
    "read-files": {
      kind: "boolean",
      help: "Also read each job's own model and dataset where they are http(s):// or s3:// URLs (with this machine's AWS_* settings) and check them as its coordinator will, before anything is created.",
    },
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
    const read = new Map<TrainingJobDocument, string>();
    // Silent: submit's standard output is one line per job, as kubectl's.
    if (values["read-files"] === true) for (const job of jobs) read.set(job, await checkUserFiles(job, silentLogger));
    const said = (job: TrainingJobDocument) => ((read.get(job) ?? "") === "" ? "" : `; ${read.get(job)}`);
    if (values["dry-run"] === true) {
      for (const job of jobs) process.stdout.write(`${resourceName}/${job.name} created (dry run)${said(job)}\n`);
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
        process.stdout.write(`${resourceName}/${job.name} created${said(job)}\n`);
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

/**
 * A job's own model and data, read here when they are URLs (with this machine's AWS_*
 * settings; the pods get theirs from spec.credentialsSecret): the same pinning its
 * coordinator does, so a bad file shows before the job is created. Paths are paths inside
 * the job's pods (its volume, its image): they are read when its coordinator starts.
 */
async function checkUserFiles(job: TrainingJobDocument, logger: Logger): Promise<string> {
  const spec = resolveJobSpec(create(JobSpecSchema, jobSpecFromTrainingJob(job.object)));
  const model = spec.model!.kind;
  const dataset = spec.dataset!;
  const files = [model.case === "layers" ? model.value.uri : "", dataset.manifest, dataset.evalManifest].filter((uri) => uri !== "");
  if (files.length === 0) return "";
  if (!files.every((uri) => /^(https?|s3):\/\//.test(uri))) {
    return "its model and data are paths inside its pods: its coordinator reads them when it starts";
  }
  try {
    const pinned = await pinArtifacts(spec, "cpu", logger);
    const layout = parameterLayout(pinned.model!, dataShape(pinned.dataset!));
    return `read its files: ${layout.parameterCount.toLocaleString("en-US")} parameters, ${dataShape(pinned.dataset!).trainRecords.toLocaleString("en-US")} training records`;
  } catch (error) {
    const failure = TrainfleetError.from(error);
    throw new TrainfleetError(failure.code, `${job.where}: ${resourceName}/${job.name}: ${failure.message}`, { cause: error });
  }
}

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
    throw new UsageError(
      `${where}: ${resourceName}/${name}: metadata.namespace: ${JSON.stringify(namespace)} is not a namespace name (a DNS label)`,
    );
  }
  try {
    checkTrainingJob(object, { imageOptional: true });
  } catch (error) {
    const failure = TrainfleetError.from(error, Code.INVALID_ARGUMENT);
    throw new TrainfleetError(
      Code.INVALID_ARGUMENT,
      `${where}: ${resourceName}/${name}: ${failure.message}`,
      failure.field === undefined ? { cause: error } : { field: failure.field, cause: error },
    );
  }
  return { object, name, namespace: namespace as string | undefined, where };
}
