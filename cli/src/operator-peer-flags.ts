/**
 * Who the operator is, as each job's NetworkPolicy names it: the namespace it runs in and
 * its pods' labels. Only pods matching both may reach a job's status port. The chart passes
 * both (its release namespace and selector labels); without them the policy admits pods with
 * the chart's operator labels in any namespace, which still need the job's read token.
 */
import type { OperatorPeer } from "@trainfleet/k8s";
import type { FlagTable, FlagValue } from "./flags.js";
import { UsageError } from "./flags.js";

export const operatorPeerFlags = {
  "operator-namespace": {
    kind: "string",
    env: "TRAINFLEET_OPERATOR_NAMESPACE",
    help: "The namespace this operator's pods run in: each job's NetworkPolicy admits the operator from there only. Default: any namespace.",
  },
  "operator-pod-labels": {
    kind: "string",
    env: "TRAINFLEET_OPERATOR_POD_LABELS",
    help: "Labels of this operator's pods, as key=value,...: each job's NetworkPolicy admits only pods with all of them. Default: the chart's operator labels.",
  },
} as const satisfies FlagTable;

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const labelName = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !dnsSubdomain.test(prefix))) return `prefix "${prefix}" is not a DNS subdomain`;
  if (name.length > 63 || !labelName.test(name))
    return `name "${name}" is not 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  return undefined;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(",").map((entry) => entry.trim())) {
    if (pair === "") continue;
    const equals = pair.indexOf("=");
    if (equals < 0)
      throw new UsageError(
        `--operator-pod-labels: "${pair}" is not key=value; give key=value,... (e.g. app.kubernetes.io/component=operator)`,
      );
    const key = pair.slice(0, equals);
    const value = pair.slice(equals + 1);
    const keyProblem = labelKeyProblem(key);
    if (keyProblem !== undefined) throw new UsageError(`--operator-pod-labels: key "${key}": ${keyProblem}`);
    if (value !== "" && (value.length > 63 || !labelName.test(value)))
      throw new UsageError(
        `--operator-pod-labels: the value of ${key}, "${value}", is not a label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`,
      );
    if (key in labels) throw new UsageError(`--operator-pod-labels: ${key} is given twice`);
    labels[key] = value;
  }
  if (Object.keys(labels).length === 0)
    throw new UsageError("--operator-pod-labels: no label given; give key=value,... or leave the flag out");
  return labels;
}

/** The operator as its flags name it, or undefined for the chart's labels in any namespace. */
export function operatorPeerFromFlags(values: Record<string, FlagValue>, chartLabels: Record<string, string>): OperatorPeer | undefined {
  const namespace = values["operator-namespace"];
  const labels = values["operator-pod-labels"];
  const hasNamespace = typeof namespace === "string" && namespace !== "";
  const hasLabels = typeof labels === "string" && labels !== "";
  if (!hasNamespace && !hasLabels) return undefined;
  if (hasNamespace && (namespace.length > 63 || !dnsLabel.test(namespace)))
    throw new UsageError(`--operator-namespace: "${namespace}" is not a namespace name (at most 63 lower-case letters, digits and '-')`);
  return {
    ...(hasNamespace ? { namespace } : {}),
    podLabels: hasLabels ? parseLabels(labels) : { ...chartLabels },
  };
}
