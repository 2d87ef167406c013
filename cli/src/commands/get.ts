/**
 * `trainfleet get [NAME]`: the namespace's TrainingJobs (or one) as kubectl prints them: the
 * CRD's additionalPrinterColumns after NAME (and NAMESPACE with --all-namespaces), cells empty
 * where a value is unset, AGE as kubectl writes durations; or the objects as JSON or YAML.
 */

import type { JsonObject, JsonValue } from "@trainfleet/k8s/resource";
import { isJsonObject, valueAt } from "@trainfleet/k8s/resource";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { Command } from "../command.js";
import { commonFlags } from "../common-flags.js";
import { UsageError } from "../flags.js";
import { apiError, connect, isApiStatus, kubeFlags, resourceName, trainingJobsResource } from "../kube-client.js";

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "date";
  /** A simple JSONPath: .field.field */
  jsonPath: string;
}

/** The CRD's additionalPrinterColumns (k8s/crd.yaml), in order: test/k8s/cli.test.ts checks that they agree. */
export const printerColumns: readonly PrinterColumn[] = [
  { name: "Phase", type: "string", jsonPath: ".status.phase" },
  { name: "Ready", type: "integer", jsonPath: ".status.readyReplicas" },
  { name: "Desired", type: "integer", jsonPath: ".spec.workers.replicas" },
  { name: "Epoch", type: "integer", jsonPath: ".status.epoch" },
  { name: "Step", type: "integer", jsonPath: ".status.step" },
  { name: "Loss", type: "number", jsonPath: ".status.loss" },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
];

/**
 * A duration as kubectl's AGE column writes it (apimachinery's duration.HumanDuration): seconds
 * up to 2 minutes, then minutes (with seconds below 10 minutes), hours (with minutes below 8
 * hours), days (with hours below 8 days), years.
 */
export function humanDuration(milliseconds: number): string {
  const seconds = Math.trunc(milliseconds / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.trunc(seconds / 3600);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.trunc(hours / 24)}d` : `${Math.trunc(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const days = Math.trunc(hours / 24) % 365;
    return days === 0 ? `${Math.trunc(hours / 24 / 365)}y` : `${Math.trunc(hours / 24 / 365)}y${days}d`;
  }
  return `${Math.trunc(hours / 24 / 365)}y`;
}

function cell(object: JsonObject, column: PrinterColumn, now: number): string {
  const value: JsonValue | undefined = valueAt(object, column.jsonPath.replace(/^\./, ""));
  if (value === undefined || value === null) return "";
  if (column.type === "date") {
    const time = typeof value === "string" ? Date.parse(value) : Number.NaN;
    return Number.isNaN(time) ? "<invalid>" : humanDuration(now - time);
  }
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** Rows laid out as kubectl's tab writer does: each column but the last padded to its widest cell plus 3 (at least 6). */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(6, ...rows.map((row) => row[i]!.length + 3)));
  return `${rows.map((row) => row.map((text, i) => (i === row.length - 1 ? text : text.padEnd(widths[i]!))).join("")).join("\n")}\n`;
}

export function trainingJobTable(objects: readonly JsonObject[], allNamespaces: boolean, now = Date.now()): string {
  const header = [...(allNamespaces ? ["NAMESPACE"] : []), "NAME", ...printerColumns.map((column) => column.name.toUpperCase())];
  const rows = objects.map((object) => {
    const metadata = isJsonObject(object["metadata"]) ? object["metadata"] : {};
    const namespace = typeof metadata["namespace"] === "string" ? metadata["namespace"] : "";
    const name = typeof metadata["name"] === "string" ? metadata["name"] : "";
    return [...(allNamespaces ? [namespace] : []), name, ...printerColumns.map((column) => cell(object, column, now))];
  });
  return formatTable([header, ...rows]);
}

function sortKey(object: JsonObject): string {
  const metadata = isJsonObject(object["metadata"]) ? object["metadata"] : {};
  return `${String(metadata["namespace"] ?? "")}/${String(metadata["name"] ?? "")}`;
}

export const getCommand: Command = {
  name: "get",
  usage: "trainfleet get [NAME] [--namespace NS | --all-namespaces] [--output json|yaml]",
  summary:
    "Lists the TrainingJobs of a namespace, or one by NAME, as kubectl get does. The columns are the CRD's printer columns: NAME, PHASE, READY, DESIRED, EPOCH, STEP, LOSS and AGE (--all-namespaces adds NAMESPACE); --output json or yaml prints the objects instead.",
  positionals: ["name"],
  flags: {
    name: { kind: "string", help: "One TrainingJob (may be given as the first argument); without it, all in the namespace." },
    "all-namespaces": { kind: "boolean", short: "A", help: "TrainingJobs of every namespace, with a NAMESPACE column." },
    output: {
      kind: "string",
      short: "o",
      choices: ["table", "json", "yaml"],
      default: "table",
      help: "table, or the objects as json or yaml (a List when there is no NAME).",
    },
    ...kubeFlags,
    "log-level": commonFlags["log-level"]!,
  },
  async run({ values, env }) {
    const name = values.name as string | undefined;
    const allNamespaces = values["all-namespaces"] === true;
    const output = values.output as "table" | "json" | "yaml";
    if (name !== undefined && allNamespaces)
      throw new UsageError("a TrainingJob cannot be retrieved by name across all namespaces: drop --all-namespaces, or give --namespace");
    if (allNamespaces && values.namespace !== undefined)
      throw new UsageError("--all-namespaces and --namespace do not go together: give one");
    const target = await connect(values, env);
    const { namespace } = target;
    let objects: JsonObject[];
    if (name !== undefined) {
      try {
        objects = [(await target.api.getNamespacedCustomObject({ ...trainingJobsResource, namespace, name })) as JsonObject];
      } catch (caught) {
        const error = apiError(target, `cannot get ${resourceName}/${name} in namespace ${namespace}`, caught);
        if (isApiStatus(error, 404))
          throw new TrainfleetError(Code.NOT_FOUND, `${resourceName} "${name}" not found in namespace ${namespace}`, { cause: error });
        throw error;
      }
    } else {
      try {
        const list = (
          allNamespaces
            ? await target.api.listClusterCustomObject({ ...trainingJobsResource })
            : await target.api.listNamespacedCustomObject({ ...trainingJobsResource, namespace })
        ) as { items?: JsonObject[] };
        objects = [...(list.items ?? [])].sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
      } catch (caught) {
        throw apiError(target, `cannot list trainingjobs ${allNamespaces ? "in any namespace" : `in namespace ${namespace}`}`, caught);
      }
    }
    if (output !== "table") {
      const printed =
        name !== undefined ? objects[0]! : { apiVersion: "v1", kind: "List", items: objects, metadata: { resourceVersion: "" } };
      if (output === "json") process.stdout.write(`${JSON.stringify(printed, null, 4)}\n`);
      else process.stdout.write((await import("yaml")).stringify(printed));
      return 0;
    }
    if (objects.length === 0) {
      // kubectl says this on stderr and exits 0.
      process.stderr.write(allNamespaces ? "No resources found\n" : `No resources found in ${namespace} namespace.\n`);
      return 0;
    }
    process.stdout.write(trainingJobTable(objects, allNamespaces));
    return 0;
  },
};
