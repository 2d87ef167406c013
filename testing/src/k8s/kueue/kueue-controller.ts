/**
 * Kueue's part in the operator's tests (no real Kueue can run here): what Kueue's controllers
 * write on a Workload, through the real API (client-node against the in-process API server),
 * as Kueue's API reference (kueue.x-k8s.io/v1beta1) describes it. Written from that reference,
 * not from Kueue's source:
 *
 * - `check` refuses a Workload Kueue's validation would refuse, naming the field: a queue name,
 *   1 to 8 pod sets with unique DNS-label names and counts >= 0, pod templates whose metadata is
 *   labels and annotations only and whose spec has containers, and a controller ownerReference
 *   (Kueue's Workload controller ignores a Workload without one).
 * - `admit` reserves quota and admits at once (no admission checks): status.admission (the
 *   ClusterQueue; per pod set its count, the flavor of each resource it requests and the
 *   resources used) and the conditions QuotaReserved True, then Admitted True (an earlier
 *   Evicted goes False), on /status.
 * - `pending` says why it is not admitted: QuotaReserved False, reason Pending, with a message.
 * - `evict` sets Evicted True (Preempted, or InactiveWorkload for a deactivated one); clearing
 *   the admission is then the job framework's part.
 */
import type { KubeConfig, V1Toleration } from "@kubernetes/client-node";
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
const group = "kueue.x-k8s.io";
const version = "v1beta1";
const workloads = { group, version, plural: "workloads" };
const resourceFlavors = { group, version, plural: "resourceflavors" };

export interface WorkloadCondition {
  type: string;
  status: string;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

interface Container {
  name?: string;
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
}

export interface PodSet {
  name: string;
  count: number;
  minCount?: number;
  template: {
    metadata?: Record<string, unknown>;
    spec: { containers: Container[]; initContainers?: Container[] } & Record<string, unknown>;
  };
}

export interface PodSetAssignment {
  name: string;
  flavors: Record<string, string>;
  resourceUsage: Record<string, string>;
  count: number;
}

export interface KueueWorkload {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    generation?: number;
    labels?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }[];
    deletionTimestamp?: string;
  };
  spec: { queueName?: string; podSets: PodSet[]; active?: boolean };
  status?: { conditions?: WorkloadCondition[]; admission?: { clusterQueue: string; podSetAssignments: PodSetAssignment[] } };
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Throws, naming the field, when Kueue would not accept the Workload. */
export function checkWorkload(workload: KueueWorkload): void {
  const name = `Workload ${workload.metadata.name}`;
  const refuse = (field: string, why: string): never => {
    throw new Error(`${name}: ${field} ${why}`);
  };
  const owners = workload.metadata.ownerReferences ?? [];
  if (!owners.some((owner) => owner.controller === true))
    refuse("metadata.ownerReferences", "has no controller reference: Kueue's job frameworks own their Workloads");
  if (typeof workload.spec.queueName !== "string" || workload.spec.queueName === "") refuse("spec.queueName", "is empty");
  const podSets = workload.spec.podSets;
  if (!Array.isArray(podSets) || podSets.length < 1 || podSets.length > 8)
    refuse("spec.podSets", `must have 1 to 8 entries, has ${podSets?.length}`);
  const seen = new Set<string>();
  podSets.forEach((podSet, index) => {
    const at = `spec.podSets[${index}]`;
    if (typeof podSet.name !== "string" || podSet.name.length > 63 || !dnsLabel.test(podSet.name))
      refuse(`${at}.name`, `${JSON.stringify(podSet.name)} is not a DNS label`);
    if (seen.has(podSet.name)) refuse(`${at}.name`, `${podSet.name} is not unique`);
    seen.add(podSet.name);
    if (!Number.isInteger(podSet.count) || podSet.count < 0) refuse(`${at}.count`, `must be an integer >= 0, is ${podSet.count}`);
    if (podSet.minCount !== undefined && (podSet.minCount < 0 || podSet.minCount > podSet.count))
      refuse(`${at}.minCount`, `must be between 0 and count (${podSet.count})`);
    const metadataKeys = Object.keys(podSet.template?.metadata ?? {});
    const extra = metadataKeys.filter((key) => key !== "labels" && key !== "annotations");
    if (extra.length > 0) refuse(`${at}.template.metadata`, `may hold labels and annotations only, holds ${extra.join(", ")}`);
    if (!Array.isArray(podSet.template?.spec?.containers) || podSet.template.spec.containers.length === 0)
      refuse(`${at}.template.spec.containers`, "is empty");
  });
}

/** A Kubernetes quantity in its base unit (cores, bytes, GPUs), as a number. */
export function quantityValue(quantity: string | number): number {
  if (typeof quantity === "number") return quantity;
  const match = /^([0-9.]+)([a-zA-Z]*)$/.exec(quantity.trim());
  if (match === null) throw new Error(`not a quantity: ${quantity}`);
  const scale: Record<string, number> = {
    "": 1,
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
    Ti: 1024 ** 4,
  };
  const factor = scale[match[2]!];
  if (factor === undefined) throw new Error(`unknown quantity suffix in ${quantity}`);
  return Number(match[1]) * factor;
}

/** What one pod of the template requests, per resource (the containers' sum; an init container's if larger). */
export function podRequests(podSet: PodSet): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const container of podSet.template.spec.containers)
    for (const [resource, quantity] of Object.entries(container.resources?.requests ?? {}))
      sum[resource] = (sum[resource] ?? 0) + quantityValue(quantity);
  for (const container of podSet.template.spec.initContainers ?? [])
    for (const [resource, quantity] of Object.entries(container.resources?.requests ?? {}))
      sum[resource] = Math.max(sum[resource] ?? 0, quantityValue(quantity));
  return sum;
}

function formatUsage(resource: string, value: number): string {
  return resource === "cpu" ? `${Math.round(value * 1000)}m` : String(Math.round(value));
}

function timestamp(now = new Date()): string {
  return now.toISOString().replace(/\.\d{3}Z$/, "Z");
}

export class KueueController {
  readonly #custom: CustomObjectsApi;

  constructor(
    config: KubeConfig,
    private readonly namespace: string,
  ) {
    this.#custom = config.makeApiClient(CustomObjectsApi);
  }

  async workload(name: string): Promise<KueueWorkload> {
    return (await this.#custom.getNamespacedCustomObject({ ...workloads, namespace: this.namespace, name })) as KueueWorkload;
  }

  /** The namespace's Workloads of a job (by the job-name label the operator puts on them). */
  async workloadsOf(job: string): Promise<KueueWorkload[]> {
    const list = (await this.#custom.listNamespacedCustomObject({
      ...workloads,
      namespace: this.namespace,
      labelSelector: `trainfleet.dev/job-name=${job}`,
    })) as { items: KueueWorkload[] };
    return list.items;
  }

  /** A ResourceFlavor: the nodes with `nodeLabels`, whose taints `tolerations` tolerate. */
  async createFlavor(name: string, nodeLabels: Record<string, string>, tolerations: V1Toleration[] = []): Promise<void> {
    await this.#custom.createClusterCustomObject({
      ...resourceFlavors,
      body: { apiVersion: `${group}/${version}`, kind: "ResourceFlavor", metadata: { name }, spec: { nodeLabels, tolerations } },
    });
  }

  /**
   * Reserves quota in `clusterQueue` on `flavor` for every resource each pod set requests, and
   * admits (there are no admission checks): after `check`, as Kueue's scheduler would. Returns
   * the Workload as written.
   */
  async admit(name: string, clusterQueue: string, flavor: string): Promise<KueueWorkload> {
    const workload = await this.workload(name);
    checkWorkload(workload);
    const podSetAssignments = workload.spec.podSets.map((podSet): PodSetAssignment => {
      const requests = podRequests(podSet);
      return {
        name: podSet.name,
        flavors: Object.fromEntries(Object.keys(requests).map((resource) => [resource, flavor])),
        resourceUsage: Object.fromEntries(
          Object.entries(requests).map(([resource, value]) => [resource, formatUsage(resource, value * podSet.count)]),
        ),
        count: podSet.count,
      };
    });
    const updates: Omit<WorkloadCondition, "lastTransitionTime">[] = [
      { type: "QuotaReserved", status: "True", reason: "QuotaReserved", message: `Quota reserved in ClusterQueue ${clusterQueue}` },
      { type: "Admitted", status: "True", reason: "Admitted", message: "The workload is admitted" },
    ];
    const evicted = workload.status?.conditions?.find((condition) => condition.type === "Evicted");
    if (evicted?.status === "True")
      updates.push({ type: "Evicted", status: "False", reason: "QuotaReserved", message: `Previously: ${evicted.message}` });
    return this.#writeStatus(workload, { admission: { clusterQueue, podSetAssignments }, conditions: this.#conditions(workload, updates) });
  }

  /** Not admitted, and why (no room in the ClusterQueue, say): QuotaReserved False, reason Pending. */
  async pending(name: string, message: string): Promise<KueueWorkload> {
    const workload = await this.workload(name);
    checkWorkload(workload);
    return this.#writeStatus(workload, {
      conditions: this.#conditions(workload, [{ type: "QuotaReserved", status: "False", reason: "Pending", message }]),
    });
  }

  /** Evicted True: preempted by a higher-priority Workload (or reason InactiveWorkload, once spec.active is false). */
  async evict(name: string, message: string, reason = "Preempted"): Promise<KueueWorkload> {
    const workload = await this.workload(name);
    return this.#writeStatus(workload, { conditions: this.#conditions(workload, [{ type: "Evicted", status: "True", reason, message }]) });
  }

  condition(workload: KueueWorkload, type: string): WorkloadCondition | undefined {
    return workload.status?.conditions?.find((condition) => condition.type === type);
  }

  #conditions(workload: KueueWorkload, updates: readonly Omit<WorkloadCondition, "lastTransitionTime">[]): WorkloadCondition[] {
    const conditions = (workload.status?.conditions ?? []).map((condition) => ({ ...condition }));
    for (const update of updates) {
      const existing = conditions.find((condition) => condition.type === update.type);
      const next = {
        ...update,
        lastTransitionTime: existing?.status === update.status ? existing.lastTransitionTime : timestamp(),
        ...(workload.metadata.generation === undefined ? {} : { observedGeneration: workload.metadata.generation }),
      };
      if (existing === undefined) conditions.push(next);
      else Object.assign(existing, next);
    }
    return conditions;
  }

  /** A merge patch of /status on the resourceVersion read, as Kueue's controllers write. */
  async #writeStatus(workload: KueueWorkload, status: Record<string, unknown>): Promise<KueueWorkload> {
    return (await this.#custom.patchNamespacedCustomObjectStatus(
      {
        ...workloads,
        namespace: this.namespace,
        name: workload.metadata.name,
        body: { metadata: { resourceVersion: workload.metadata.resourceVersion }, status },
      },
      mergePatch,
    )) as KueueWorkload;
  }
}
