/**
 * A container's environment as a kubelet makes it: the container's own env over the "image's",
 * `valueFrom.fieldRef` from the downward API (with this host's IP for the pod's and the node's),
 * `$(VAR)` references to earlier variables and `$$` escapes. The rewrites that one host for every
 * pod needs (listen ports, Service addresses) are the caller's, through `rewrite`.
 */

import type { V1EnvVar, V1Pod } from "@kubernetes/client-node";
import { podIP } from "./pod-network.js";

/** The env a pod's container starts with; `rewrite` sees each of the container's own variables once resolved. */
export async function containerEnvironment(
  pod: V1Pod,
  vars: readonly V1EnvVar[],
  imageEnv: Record<string, string> | undefined,
  rewrite: (name: string, value: string) => Promise<string>,
): Promise<Record<string, string>> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/",
    HOSTNAME: pod.metadata!.name!,
    TRAINFLEET_HOST: pod.metadata!.name!,
    ...imageEnv,
  };
  // $(VAR) refers to the container's own variables defined before it (and the service variables, not made here).
  const defined = new Map<string, string>();
  for (const variable of vars) {
    let value: string;
    if (variable.valueFrom !== undefined) {
      const fieldPath = variable.valueFrom.fieldRef?.fieldPath;
      if (fieldPath === undefined) throw new Error(`env ${variable.name}: only valueFrom.fieldRef is supported here`);
      value = fieldValue(pod, fieldPath);
    } else value = expand(variable.value ?? "", defined);
    defined.set(variable.name, value);
  }
  for (const [name, value] of defined) env[name] = await rewrite(name, value);
  return env;
}

/** The downward API's fieldRef values, with this host's IP for the pod's and the node's. */
function fieldValue(pod: V1Pod, fieldPath: string): string {
  const keyed = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (keyed !== null) return (keyed[1] === "labels" ? pod.metadata?.labels : pod.metadata?.annotations)?.[keyed[2]!] ?? "";
  switch (fieldPath) {
    case "status.podIP":
    case "status.podIPs":
    case "status.hostIP":
    case "status.hostIPs":
      return podIP;
    case "metadata.name":
      return pod.metadata?.name ?? "";
    case "metadata.namespace":
      return pod.metadata?.namespace ?? "";
    case "metadata.uid":
      return pod.metadata?.uid ?? "";
    case "spec.nodeName":
      return "localhost";
    case "spec.serviceAccountName":
      return pod.spec?.serviceAccountName ?? "default";
    default:
      throw new Error(`fieldRef ${fieldPath} is not supported here`);
  }
}

/**
 * Kubernetes' expansion of an env value: `$(NAME)` is NAME's value when it is defined (else left
 * as written), `$$` is a literal `$`, any other `$` is itself.
 */
export function expand(value: string, defined: ReadonlyMap<string, string>): string {
  let result = "";
  for (let i = 0; i < value.length; i++) {
    const char = value[i]!;
    if (char !== "$" || i + 1 >= value.length) {
      result += char;
      continue;
    }
    const next = value[i + 1];
    if (next === "$") {
      result += "$";
      i++;
    } else if (next === "(") {
      const end = value.indexOf(")", i + 2);
      if (end < 0) {
        result += value.slice(i);
        break;
      }
      const name = value.slice(i + 2, end);
      result += defined.get(name) ?? `$(${name})`;
      i = end;
    } else result += char;
  }
  return result;
}
