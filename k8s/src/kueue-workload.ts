/**
 * The Kueue Workload (kueue.x-k8s.io/v1beta1) a queued TrainingJob should have, and how the
 * operator reads one, as Kueue documents the integration of a job framework: the framework
 * makes one Workload per job incarnation, owned by the job (a controller ownerReference: Kueue
 * needs one, and deletes nothing itself), whose pod sets are the job's roles with their counts
 * and pod templates. Kueue reserves quota for it (QuotaReserved), admits it (status.admission:
 * a ClusterQueue and, per pod set, the ResourceFlavor of each resource; condition Admitted),
 * may evict it (Evicted), and frees its quota once it is Finished. Only the few fields the
 * operator uses are typed here.
 */
import { createHash } from "node:crypto";
import type { V1ObjectMeta, V1PodSpec, V1Toleration } from "@kubernetes/client-node";
import { timestamp } from "./conditions.js";
import type { GangPlan } from "./gang.js";
import type { Role } from "./names.js";
import { labels, managedBy } from "./names.js";
import { ownerReference } from "./owner.js";
import { coordinatorPod, desiredWorkers, shardPod, workerPod } from "./pod-manifests.js";
import type { TrainingJob } from "./training-job.js";
import { shardCount, workerReplicas } from "./training-job.js";

export const kueueGroup = "kueue.x-k8s.io";
export const kueueVersion = "v1beta1";
export const workloadApi = { group: kueueGroup, version: kueueVersion, plural: "workloads" } as const;
export const resourceFlavorApi = { group: kueueGroup, version: kueueVersion, plural: "resourceflavors" } as const;

/** The label Kueue's job frameworks put on a Workload: the uid of the job it admits. */
const jobUidLabel = "kueue.x-k8s.io/job-uid";

/** A metav1.Condition, as Kueue writes them on a Workload. */
export interface KueueCondition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface PodSet {
  /** A DNS label: the role (coordinator, parameter-server, worker). */
  name: string;
  count: number;
  template: { metadata: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec: V1PodSpec };
}

export interface PodSetAssignment {
  name: string;
  /** ResourceFlavor name per resource (cpu, memory, nvidia.com/gpu...). */
  flavors?: Record<string, string>;
  resourceUsage?: Record<string, string>;
  count?: number;
}

export interface Workload {
  apiVersion: string;
  kind: string;
  metadata: V1ObjectMeta & { name: string; namespace?: string };
  spec: { queueName?: string; podSets: PodSet[]; active?: boolean };
  status?: {
    conditions?: KueueCondition[];
    admission?: { clusterQueue: string; podSetAssignments: PodSetAssignment[] };
  };
}

/** A ResourceFlavor (cluster-scoped): the nodes it stands for, by their labels and taints. */
export interface ResourceFlavor {
  apiVersion?: string;
  kind?: string;
  metadata: V1ObjectMeta & { name: string };
  spec?: { nodeLabels?: Record<string, string>; tolerations?: V1Toleration[] };
}

/**
 * trainingjob-NAME-HASH: stable for one incarnation of the job (the hash is of its uid), new for
 * a job deleted and made again with the same name, at most 253 characters (a DNS subdomain).
 */
export function workloadName(job: TrainingJob): string {
  const hash = createHash("sha256").update(job.metadata.uid).digest("hex").slice(0, 5);
  const prefix = `trainingjob-${job.metadata.name}`.slice(0, 253 - hash.length - 1).replace(/[-.]+$/, "");
  return `${prefix}-${hash}`;
}

/** How many pods of each role the job runs now: the coordinator, its shard pods (none when colocated), its workers. */
export function podCounts(job: TrainingJob): Record<Role, number> {
  const trainingReplicas = job.status?.trainingReplicas ?? workerReplicas(job);
  return { coordinator: 1, "parameter-server": shardCount(job), worker: desiredWorkers(job, trainingReplicas) };
}

/**
 * The pod sets: one per role that has pods, each with the template of the pods the operator
 * makes for it (built by the same code, so Kueue counts exactly what they request). A
 * template's metadata has labels and annotations only (no name, no per-pod index label).
 */
export function desiredPodSets(job: TrainingJob, scheduling: GangPlan): PodSet[] {
  const counts = podCounts(job);
  const trainingReplicas = job.status?.trainingReplicas ?? workerReplicas(job);
  const representative: Record<Role, () => ReturnType<typeof coordinatorPod>> = {
    coordinator: () => coordinatorPod(job, trainingReplicas, scheduling),
    "parameter-server": () => shardPod(job, 0, scheduling),
    worker: () => workerPod(job, 0, scheduling),
  };
  const roles: Role[] = ["coordinator", "parameter-server", "worker"];
  return roles
    .filter((role) => counts[role] > 0)
    .map((role) => {
      const pod = representative[role]();
      const { [labels.index]: _index, ...podLabels } = pod.metadata?.labels ?? {};
      const annotations = pod.metadata?.annotations;
      return {
        name: role,
        count: counts[role],
        template: {
          metadata: { labels: podLabels, ...(annotations === undefined ? {} : { annotations: { ...annotations } }) },
          spec: pod.spec!,
        },
      };
    });
}

/** The Workload the job should have: in its queue, active unless the user suspended the job. */
export function desiredWorkload(job: TrainingJob, scheduling: GangPlan): Workload {
  return {
    apiVersion: `${kueueGroup}/${kueueVersion}`,
    kind: "Workload",
    metadata: {
      name: workloadName(job),
      namespace: job.metadata.namespace,
      labels: { [labels.managedBy]: managedBy, [labels.jobName]: job.metadata.name, [jobUidLabel]: job.metadata.uid },
      ownerReferences: [ownerReference(job)],
    },
    spec: {
      queueName: job.spec.scheduling?.queueName ?? "",
      podSets: desiredPodSets(job, scheduling),
      active: job.spec.runPolicy?.suspend !== true,
    },
  };
}

export function workloadCondition(workload: Workload, type: string): KueueCondition | undefined {
  return workload.status?.conditions?.find((condition) => condition.type === type);
}

export function isConditionTrue(workload: Workload, type: string): boolean {
  return workloadCondition(workload, type)?.status === "True";
}

/** Kueue holds quota for it: an admission is written, or QuotaReserved is True. */
export function holdsQuota(workload: Workload): boolean {
  return workload.status?.admission !== undefined || isConditionTrue(workload, "QuotaReserved");
}

/** Admitted: quota reserved (status.admission) and every admission check passed (Admitted True). */
export function isAdmitted(workload: Workload): boolean {
  return workload.status?.admission !== undefined && isConditionTrue(workload, "Admitted");
}

/** Evicted True while Kueue still holds quota for it: the job must stop, and then give the quota back. */
export function evictionPending(workload: Workload): KueueCondition | undefined {
  const evicted = workloadCondition(workload, "Evicted");
  return evicted?.status === "True" && holdsQuota(workload) ? evicted : undefined;
}

/** The pods of a pod set Kueue admitted (the assignment's count, else the pod set's). */
export function admittedCount(workload: Workload, podSet: Role): number {
  const assigned = workload.status?.admission?.podSetAssignments.find((assignment) => assignment.name === podSet)?.count;
  return assigned ?? workload.spec.podSets.find((candidate) => candidate.name === podSet)?.count ?? 0;
}

/** Whether the Workload's pod set counts are the job's now (left-out pod sets count 0). */
export function sameCounts(workload: Workload, counts: Record<Role, number>): boolean {
  const roles = Object.keys(counts) as Role[];
  const named = new Set(workload.spec.podSets.map((podSet) => podSet.name));
  return (
    roles.every((role) => (workload.spec.podSets.find((podSet) => podSet.name === role)?.count ?? 0) === counts[role]) &&
    [...named].every((name) => roles.includes(name as Role))
  );
}

/**
 * The Workload's conditions with `updates` set, as metav1.Conditions are kept: one per type,
 * lastTransitionTime changed only when the status does.
 */
export function withConditions(
  workload: Workload,
  updates: readonly Pick<KueueCondition, "type" | "status" | "reason" | "message">[],
  now: Date,
): KueueCondition[] {
  const conditions = (workload.status?.conditions ?? []).map((condition) => ({ ...condition }));
  for (const update of updates) {
    const existing = conditions.find((condition) => condition.type === update.type);
    const next: KueueCondition = {
      ...update,
      lastTransitionTime: existing?.status === update.status ? existing.lastTransitionTime : timestamp(now),
      ...(workload.metadata.generation === undefined ? {} : { observedGeneration: workload.metadata.generation }),
    };
    if (existing === undefined) conditions.push(next);
    else Object.assign(existing, next);
  }
  return conditions;
}
