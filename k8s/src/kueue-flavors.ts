/**
 * How Kueue's admission steers a job's pods to the nodes it reserved quota on: each pod set was
 * assigned a ResourceFlavor per resource, and a flavor stands for nodes by their labels (and
 * taints). As Kueue's job frameworks do when they start an admitted job, the pods of the pod
 * set get every assigned flavor's spec.nodeLabels merged into their nodeSelector (the flavor's
 * win over a template's of the same key) and its spec.tolerations added to theirs.
 */
import type { V1Pod, V1Toleration } from "@kubernetes/client-node";
import { sameJson } from "./json.js";
import type { ResourceFlavor, Workload } from "./kueue-workload.js";
import type { Role } from "./names.js";

export interface FlavorSteering {
  nodeSelector: Record<string, string>;
  tolerations: V1Toleration[];
}

/** The flavors the Workload's admission names, pod set by pod set. */
export function assignedFlavors(workload: Workload): Map<string, string[]> {
  const result = new Map<string, string[]>();
  for (const assignment of workload.status?.admission?.podSetAssignments ?? [])
    result.set(assignment.name, [...new Set(Object.values(assignment.flavors ?? {}))]);
  return result;
}

/**
 * Each pod set's nodeSelector and tolerations from its flavors, or the name of a flavor that
 * is not among `flavors` (the operator has not read it yet, or it was deleted).
 */
export function flavorSteering(
  workload: Workload,
  flavors: ReadonlyMap<string, ResourceFlavor>,
): { steering: Map<Role, FlavorSteering> } | { missing: string } {
  const steering = new Map<Role, FlavorSteering>();
  for (const [podSet, names] of assignedFlavors(workload)) {
    const result: FlavorSteering = { nodeSelector: {}, tolerations: [] };
    for (const name of names) {
      const flavor = flavors.get(name);
      if (flavor === undefined) return { missing: name };
      Object.assign(result.nodeSelector, flavor.spec?.nodeLabels ?? {});
      for (const toleration of flavor.spec?.tolerations ?? [])
        if (!result.tolerations.some((existing) => sameJson(existing, toleration))) result.tolerations.push(toleration);
    }
    steering.set(podSet as Role, result);
  }
  return { steering };
}

/** The pod, sent where its flavors' nodes are. */
export function steered(pod: V1Pod, steering: FlavorSteering | undefined): V1Pod {
  if (steering === undefined || pod.spec === undefined) return pod;
  const spec = { ...pod.spec };
  if (Object.keys(steering.nodeSelector).length > 0) spec.nodeSelector = { ...spec.nodeSelector, ...steering.nodeSelector };
  const tolerations = [...(spec.tolerations ?? [])];
  for (const toleration of steering.tolerations)
    if (!tolerations.some((existing) => sameJson(existing, toleration))) tolerations.push(toleration);
  if (tolerations.length > 0) spec.tolerations = tolerations;
  return { ...pod, spec };
}
