/**
 * Gang admission. A job's minimum set is the pods its coordinator waits for before training
 * starts: the coordinator, the pods of the members @trainfleet/spec's membersToStart names for
 * the JobSpec the operator hands the coordinator (every shard and workers.replicas workers as
 * the job started; with colocated placement the shards live in the workers, so no shard pod),
 * read from the same function the coordinator's start gate uses, so the two cannot drift. With
 * `scheduling.gang.enabled` the operator either hands the set to a gang scheduler as a PodGroup
 * (Volcano, or the scheduler-plugins coscheduler, when the operator was started with that API
 * allowed) or admits it itself: the job is Admitted when every pod of the set is scheduled, and
 * Failed with GangTimeout, its pods released, when that has not happened by the deadline. A
 * job's pods may be scheduled only in part meanwhile; the coordinator starts training only when
 * the set has registered, so no step runs without the whole gang.
 */
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import type { MembersToStart } from "@trainfleet/spec";
import { membersToStart, resolveJobSpec } from "@trainfleet/spec";
import { coordinatorJobSpec } from "./job-spec.js";
import { coordinatorName, shardPodName, workerPodName } from "./names.js";
import { ownerReference } from "./owner.js";
import type { PodGroupApi } from "./pod-group-apis.js";
import type { TrainingJob } from "./training-job.js";
import { runPolicyDefaults, shardCount, workerReplicas } from "./training-job.js";

export type { PodGroupApi } from "./pod-group-apis.js";
export { podGroupApis } from "./pod-group-apis.js";

export interface GangPlan {
  /** The PodGroup to create, when a gang scheduler admits the job. */
  podGroup?: KubernetesObject & { spec: Record<string, unknown> };
  podLabels: Record<string, string>;
  podAnnotations: Record<string, string>;
  /** Overrides scheduling.schedulerName (Volcano's PodGroups are read by the volcano scheduler only). */
  schedulerName?: string;
}

export const podGroupResources: Record<PodGroupApi, { group: string; version: string; plural: string }> = {
  volcano: { group: "scheduling.volcano.sh", version: "v1beta1", plural: "podgroups" },
  coscheduling: { group: "scheduling.x-k8s.io", version: "v1alpha1", plural: "podgroups" },
};

export function gangEnabled(job: TrainingJob): boolean {
  return job.spec.scheduling?.gang?.enabled === true;
}

export function gangTimeoutSeconds(job: TrainingJob): number {
  return job.spec.scheduling?.gang?.timeoutSeconds ?? runPolicyDefaults.gangTimeoutSeconds;
}

/**
 * What the job's coordinator waits for before it trains, from the JobSpec it is given (with the
 * replicas the job started with). A spec the coordinator would refuse cannot say: that happens
 * only when a running job was edited (a new job is checked first), and then every pod counts.
 */
function coordinatorWaitsFor(job: TrainingJob): MembersToStart {
  const trainingReplicas = job.status?.trainingReplicas ?? workerReplicas(job);
  try {
    return membersToStart(resolveJobSpec(coordinatorJobSpec(job, trainingReplicas)));
  } catch {
    const shardPods = shardCount(job);
    return { shards: shardPods === 0 ? trainingReplicas : shardPods, workers: trainingReplicas, shardProcesses: shardPods };
  }
}

/** The names of the pods of the minimum set: the coordinator, then the pods of the members it waits for. */
export function minimumSet(job: TrainingJob): string[] {
  const name = job.metadata.name;
  const members = coordinatorWaitsFor(job);
  const shards = Array.from({ length: members.shardProcesses }, (_, index) => shardPodName(name, index));
  const workers = Array.from({ length: members.workers }, (_, rank) => workerPodName(name, rank));
  return [coordinatorName(name), ...shards, ...workers];
}

/**
 * Which PodGroup API admits the job, if any: Volcano when the job names the volcano scheduler
 * (or it is the only one allowed), else the coscheduler.
 */
export function podGroupApiFor(job: TrainingJob, allowed: readonly PodGroupApi[]): PodGroupApi | undefined {
  if (!gangEnabled(job) || allowed.length === 0) return undefined;
  if (job.spec.scheduling?.schedulerName === "volcano" && allowed.includes("volcano")) return "volcano";
  return allowed.includes("coscheduling") ? "coscheduling" : "volcano";
}

export function gangPlan(job: TrainingJob, allowed: readonly PodGroupApi[]): GangPlan {
  const api = podGroupApiFor(job, allowed);
  if (api === undefined) return { podLabels: {}, podAnnotations: {} };
  const { group, version } = podGroupResources[api];
  const minMember = minimumSet(job).length;
  const metadata = { name: job.metadata.name, namespace: job.metadata.namespace, ownerReferences: [ownerReference(job)] };
  if (api === "volcano") {
    const spec: Record<string, unknown> = { minMember };
    if (job.spec.scheduling?.priorityClassName !== undefined) spec.priorityClassName = job.spec.scheduling.priorityClassName;
    return {
      podGroup: { apiVersion: `${group}/${version}`, kind: "PodGroup", metadata, spec },
      podLabels: {},
      podAnnotations: { "scheduling.k8s.io/group-name": job.metadata.name },
      schedulerName: "volcano",
    };
  }
  return {
    podGroup: {
      apiVersion: `${group}/${version}`,
      kind: "PodGroup",
      metadata,
      spec: { minMember, scheduleTimeoutSeconds: gangTimeoutSeconds(job) },
    },
    podLabels: { "scheduling.x-k8s.io/pod-group": job.metadata.name },
    podAnnotations: {},
  };
}

function isScheduled(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  if (phase === "Running" || phase === "Succeeded" || phase === "Failed") return true;
  return pod.status?.conditions?.some((condition) => condition.type === "PodScheduled" && condition.status === "True") ?? false;
}

/** What keeps a pod from being scheduled, as the scheduler said it (PodScheduled False). */
function whyUnscheduled(pod: V1Pod | undefined): string {
  if (pod === undefined) return "not created yet";
  const condition = pod.status?.conditions?.find((candidate) => candidate.type === "PodScheduled" && candidate.status === "False");
  if (condition === undefined) return "pending";
  return [condition.reason, condition.message].filter((part) => part !== undefined && part !== "").join(": ");
}

export interface GangState {
  admitted: boolean;
  /** Which pods of the minimum set are not scheduled, and why. */
  missing: string[];
  size: number;
}

export function gangState(job: TrainingJob, pods: readonly V1Pod[]): GangState {
  const byName = new Map(pods.map((pod) => [pod.metadata?.name, pod]));
  const set = minimumSet(job);
  const missing = set.filter((name) => {
    const pod = byName.get(name);
    return pod === undefined || !isScheduled(pod);
  });
  return {
    admitted: missing.length === 0,
    missing: missing.map((name) => `${name} (${whyUnscheduled(byName.get(name))})`),
    size: set.length,
  };
}
