/**
 * Carries out a reconcile's plan with client-node: the Secrets, then the creates (an object that
 * already exists is fine: names are stable), deletes (one already gone is fine; a uid
 * precondition keeps a newer pod of the same name safe), the changes to the job's Kueue
 * Workload, the status as a merge patch on /status (only when it changed), the Events of the transitions once the status that records them is
 * written, and the job's deletion after its TTL.
 *
 * A create that the API server refuses or does not answer stops the creates of this pass (as a
 * ReplicaSet's slow start does: the rest would most likely meet the same); it, and a failed
 * renewal of a pod's Secret, are recorded on the job in the same pass (create-failures.ts: the
 * condition CreateFailed and a Warning Event), and the deletes, the status and the Events still go out. A
 * refusal (4xx) is no error of the reconcile: the job is looked at again as usual. A failure that
 * may pass by itself (5xx, 429, no answer) is handed back as `retry`, once the status that
 * records it is written, for the operator's backoff. Any other API error (a delete, the status,
 * an Event) is thrown, for the operator to retry the whole reconcile.
 */

import type {
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObject,
  NetworkingV1Api,
  V1NetworkPolicy,
  V1Pod,
  V1Service,
} from "@kubernetes/client-node";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { Logger } from "@trainfleet/runtime";
import { isStatusCode } from "./api-status.js";
import { timestamp } from "./conditions.js";
import type { CreateFailure } from "./create-failures.js";
import { createFailure, describeFailure, recordCreateOutcome } from "./create-failures.js";
import type { CredentialSecrets } from "./credential-secrets.js";
import { podGroupResources } from "./gang.js";
import type { Workload } from "./kueue-workload.js";
import { workloadApi } from "./kueue-workload.js";
import { apiVersion, group, kind, managedBy, plural, version } from "./names.js";
import type { KubeEvent, ReconcilePlan, WorkloadChange } from "./reconcile-plan.js";
import type { TrainingJob, TrainingJobStatus } from "./training-job.js";

export interface KubeClients {
  core: CoreV1Api;
  custom: CustomObjectsApi;
  networking: NetworkingV1Api;
  secrets: CredentialSecrets;
  logger: Logger;
  now: Date;
}

export interface AppliedPlan {
  /** The job as written, when its status was patched. */
  written: TrainingJob | undefined;
  /** What could not be created (or renewed) in this pass, as recorded on the job. */
  failures: CreateFailure[];
  /** A failure that may pass by itself (5xx, 429, no answer), for the operator to retry the reconcile with backoff. */
  retry: Error | undefined;
}

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** Applies the plan; returns the job as written and what could not be created. */
export async function applyPlan(plan: ReconcilePlan, job: TrainingJob, clients: KubeClients): Promise<AppliedPlan> {
  const { core, custom, logger } = clients;
  const namespace = job.metadata.namespace;
  const jobFields = { job: `${namespace}/${job.metadata.name}` };
  const failures = await createObjects(plan, job, clients);
  for (const failure of failures)
    logger.warn(
      { ...jobFields, reason: failure.reason, transient: failure.transient },
      `could not create ${failure.what}: ${failure.message}`,
    );
  for (const { name, uid } of plan.deletePods) {
    try {
      await core.deleteNamespacedPod({ name, namespace, body: { preconditions: { uid } } });
      logger.info({ ...jobFields, pod: name }, "deleted pod");
    } catch (error) {
      if (!isStatusCode(error, 404, 409)) throw error;
    }
  }
  for (const change of plan.workload) await changeWorkload(clients, job, change);
  const outcome = recordCreateOutcome(job, plan, failures, clients.now);
  let written: TrainingJob | undefined;
  if (outcome.status !== undefined) {
    const body = { status: mergePatchOf(job.status ?? {}, outcome.status) };
    written = (await custom.patchNamespacedCustomObjectStatus(
      { group, version, namespace, plural, name: job.metadata.name, body },
      mergePatch,
    )) as TrainingJob;
    logger.info({ ...jobFields, phase: outcome.status.phase }, "status updated");
  }
  for (const event of [...plan.events, ...outcome.events]) await recordEvent(clients, job, event);
  if (plan.deleteJob) {
    try {
      await custom.deleteNamespacedCustomObject({
        group,
        version,
        namespace,
        plural,
        name: job.metadata.name,
        body: { preconditions: { uid: job.metadata.uid } },
      });
      logger.info(jobFields, "deleted the finished job (runPolicy.ttlSecondsAfterFinished)");
    } catch (error) {
      if (!isStatusCode(error, 404, 409)) throw error;
    }
  }
  const transient = failures.find((failure) => failure.transient);
  return { written, failures, retry: transient === undefined ? undefined : new Error(describeFailure(transient)) };
}

/**
 * The Secrets of the new pods (before the pods that mount them: a pod whose Secret is missing
 * would wait in ContainerCreating), the renewals of the staying pods' credentials, then each
 * object in order, up to the first that fails. Returns what failed, the failed create first.
 */
async function createObjects(plan: ReconcilePlan, job: TrainingJob, clients: KubeClients): Promise<CreateFailure[]> {
  const { logger } = clients;
  const namespace = job.metadata.namespace;
  const jobFields = { job: `${namespace}/${job.metadata.name}` };
  const failures: CreateFailure[] = [];
  let secretsMade = true;
  try {
    for (const name of await clients.secrets.ensure(job, plan.secrets)) logger.info({ ...jobFields, kind: "Secret", name }, "created");
  } catch (error) {
    failures.push(createFailure("the credentials of the job's new pods (Secrets)", error));
    secretsMade = false;
  }
  try {
    await clients.secrets.renew(job, plan.renewSecrets);
  } catch (error) {
    failures.push(createFailure("the renewed credentials of the job's running pods (Secrets)", error));
  }
  if (!secretsMade) return failures;
  for (const object of plan.create) {
    try {
      await createObject(clients, namespace, object);
      logger.info({ ...jobFields, kind: object.kind, name: object.metadata?.name }, "created");
    } catch (error) {
      if (isStatusCode(error, 409)) continue;
      return [createFailure(`${object.kind} ${object.metadata?.name ?? ""}`, error), ...failures];
    }
  }
  return failures;
}

async function createObject({ core, custom, networking }: KubeClients, namespace: string, object: KubernetesObject): Promise<void> {
  if (object.kind === "Pod") await core.createNamespacedPod({ namespace, body: object as V1Pod });
  else if (object.kind === "Service") await core.createNamespacedService({ namespace, body: object as V1Service });
  else if (object.kind === "NetworkPolicy") await networking.createNamespacedNetworkPolicy({ namespace, body: object as V1NetworkPolicy });
  else if (object.apiVersion === `${workloadApi.group}/${workloadApi.version}` && object.kind === "Workload")
    await custom.createNamespacedCustomObject({ ...workloadApi, namespace, body: object });
  else {
    // The only other custom objects the operator makes are gang schedulers' PodGroups.
    const resource = Object.values(podGroupResources).find(({ group, version }) => object.apiVersion === `${group}/${version}`);
    if (resource === undefined) throw new Error(`the operator does not create ${object.apiVersion} ${object.kind}`);
    await custom.createNamespacedCustomObject({ ...resource, namespace, body: object });
  }
}

/**
 * One change to the job's Workload, with merge patches: spec.active; its /status, on the
 * resourceVersion it was computed from (a 409 means Kueue wrote it meanwhile: the informer
 * brings the new one, and the job is looked at again); its deletion, on its uid. One already
 * gone is fine.
 */
async function changeWorkload({ custom, logger }: KubeClients, job: TrainingJob, change: WorkloadChange): Promise<void> {
  const namespace = job.metadata.namespace;
  const fields = { job: `${namespace}/${job.metadata.name}`, workload: change.name };
  try {
    if (change.action === "setActive") {
      const body: Partial<Workload> = { spec: { active: change.active } as Workload["spec"] };
      await custom.patchNamespacedCustomObject({ ...workloadApi, namespace, name: change.name, body }, mergePatch);
      logger.info({ ...fields, active: change.active }, "set the Workload's spec.active");
    } else if (change.action === "patchStatus") {
      const body = { metadata: { resourceVersion: change.resourceVersion }, status: change.status };
      await custom.patchNamespacedCustomObjectStatus({ ...workloadApi, namespace, name: change.name, body }, mergePatch);
      logger.info(fields, "updated the Workload's status");
    } else {
      const body = { preconditions: { uid: change.uid } };
      await custom.deleteNamespacedCustomObject({ ...workloadApi, namespace, name: change.name, body });
      logger.info(fields, "deleted the Workload, to queue the job again");
    }
  } catch (error) {
    if (isStatusCode(error, 404)) return;
    if (isStatusCode(error, 409) && change.action !== "setActive") {
      logger.info(fields, "the Workload changed meanwhile; the job is looked at again");
      return;
    }
    throw error;
  }
}

/** A JSON merge patch from one status to the next: fields that went away are set to null. */
function mergePatchOf(before: TrainingJobStatus, after: TrainingJobStatus): Record<string, unknown> {
  const patch: Record<string, unknown> = { ...after };
  for (const key of Object.keys(before)) if (!(key in after)) patch[key] = null;
  return patch;
}

async function recordEvent({ core, now }: KubeClients, job: TrainingJob, event: KubeEvent): Promise<void> {
  const time = timestamp(now);
  await core.createNamespacedEvent({
    namespace: job.metadata.namespace,
    body: {
      metadata: { generateName: `${job.metadata.name}.`, namespace: job.metadata.namespace },
      involvedObject: { apiVersion, kind, name: job.metadata.name, namespace: job.metadata.namespace, uid: job.metadata.uid },
      type: event.type,
      reason: event.reason,
      message: event.message,
      source: { component: managedBy },
      reportingComponent: `${group}/operator`,
      firstTimestamp: new Date(time),
      lastTimestamp: new Date(time),
      count: 1,
    },
  });
}
