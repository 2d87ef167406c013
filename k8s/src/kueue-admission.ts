/**
 * Kueue admission of a job that names a queue (scheduling.queueName) while the operator runs
 * with --kueue, as Kueue's job frameworks do it for their jobs (and as Kueue documents it for a
 * framework outside Kueue): the job gets a Workload (kueue-workload.ts) and makes no pod until
 * Kueue admits it; then its pods go where the assigned ResourceFlavors say (kueue-flavors.ts).
 *
 * - No Workload yet: it is made; the job waits (Suspended, WaitingForQueue).
 * - Pending: the job waits, and says why in Kueue's words (QuotaReserved False's message).
 * - Admitted: the job runs (Suspended False, Admitted); from here it is like any job.
 * - Evicted (preempted, deactivated, pods not ready in time...): every pod is deleted
 *   (Suspended, Evicted), and once none runs the admission is cleared on the Workload's
 *   status (QuotaReserved False, Pending, with the eviction's message), as a job framework
 *   does after it stopped its job: Kueue queues it again.
 * - runPolicy.suspend: the Workload is made inactive (spec.active false), which makes Kueue
 *   evict it and free its quota; resuming makes it active again.
 * - More workers than were admitted: pod sets cannot change once quota is reserved, so the
 *   pods are stopped and the Workload is made again at the new size (queued again). Fewer
 *   workers need nothing: the quota stays reserved at the admitted size.
 * - Finished (Succeeded or Failed): the Workload gets Finished True, once, so Kueue frees its quota.
 */
import { flavorSteering } from "./kueue-flavors.js";
import type { KueueCondition, Workload } from "./kueue-workload.js";
import {
  admittedCount,
  desiredWorkload,
  evictionPending,
  isAdmitted,
  isConditionTrue,
  podCounts,
  sameCounts,
  withConditions,
  workloadCondition,
  workloadName,
} from "./kueue-workload.js";
import { labels } from "./names.js";
import { isFinishedPod } from "./observed-pods.js";
import { admittedThroughWorkload, podScheduling } from "./pod-scheduling.js";
import type { ReconcilePass } from "./reconcile-pass.js";
import type { ReconcileOptions } from "./reconcile-plan.js";
import { stopJob, suspend } from "./run-policy.js";
import type { TrainingJob } from "./training-job.js";

/** Whether the job may have pods in this pass: it is not admitted through a Workload, or Kueue admitted it. */
export function admittedByKueue(pass: ReconcilePass): boolean {
  const { job, observed, options } = pass;
  if (!admittedThroughWorkload(job, options)) return true;
  const queue = job.spec.scheduling!.queueName!;
  const suspended = job.spec.runPolicy?.suspend === true;
  const workload = observed.workload;
  if (workload === undefined) {
    pass.plan.create.push(desiredWorkload(job, podScheduling(job, options)));
    const name = workloadName(job);
    if (suspended) suspend(pass, `; its Kueue Workload ${name} is made inactive`);
    else stopJob(pass, "WaitingForQueue", waitingMessage(name, queue));
    return false;
  }
  const name = workload.metadata.name;
  if (workload.metadata.deletionTimestamp !== undefined) {
    stopJob(pass, "WaitingForQueue", `Workload ${name} is being deleted: the job is queued again with a new one once it is gone`);
    return false;
  }
  if ((workload.spec.active !== false) === suspended) pass.plan.workload.push({ action: "setActive", name, active: !suspended });
  const evicted = evictionPending(workload);
  if (evicted !== undefined) {
    const kueueSaid = `Kueue evicted Workload ${name} (${evicted.reason}): ${evicted.message}`;
    if (suspended) suspend(pass, `; ${kueueSaid}`);
    else stopJob(pass, "Evicted", `${kueueSaid}; the job is queued again once its pods are gone, and resumes from its newest checkpoint`);
    if (noPodRunning(pass)) giveQuotaBack(pass, workload, evicted);
    return false;
  }
  if (suspended) {
    suspend(pass, `; its Kueue Workload ${name} is inactive (spec.active false): Kueue frees its quota`);
    return false;
  }
  const counts = podCounts(job);
  if (isAdmitted(workload)) {
    const admitted = admittedCount(workload, "worker");
    if (counts.worker > admitted) {
      requeue(
        pass,
        workload,
        `${counts.worker} workers wanted (spec.workers.replicas), more than the ${admitted} Kueue admitted: the job is queued again at its new size, with a new Workload`,
      );
      return false;
    }
    const clusterQueue = workload.status!.admission!.clusterQueue;
    const flavors = flavorSteering(workload, observed.resourceFlavors ?? new Map());
    if ("missing" in flavors) {
      stopJob(
        pass,
        "WaitingForQueue",
        `Kueue admitted Workload ${name} to ClusterQueue ${clusterQueue} on ResourceFlavor ${flavors.missing}, which the operator cannot read yet (its pods would not know their nodes)`,
      );
      return false;
    }
    pass.steering = flavors.steering;
    if (pass.conditions.isTrue("Suspended")) pass.resumed = true;
    pass.conditions.set("Suspended", "False", "Admitted", `Kueue admitted Workload ${name} to ClusterQueue ${clusterQueue}`);
    return true;
  }
  if (!sameCounts(workload, counts)) {
    requeue(pass, workload, `the job's pod counts changed while it was queued: Workload ${name} is made again with the new counts`);
    return false;
  }
  stopJob(pass, "WaitingForQueue", pendingMessage(workload, queue));
  return false;
}

/** Once the job has finished: its Workload gets Finished True (once), so that Kueue frees the quota. */
export function finishWorkload(pass: ReconcilePass): void {
  const workload = pass.observed.workload;
  if (!pass.finished() || !admittedThroughWorkload(pass.job, pass.options) || workload === undefined) return;
  if (isConditionTrue(workload, "Finished") || workload.metadata.deletionTimestamp !== undefined) return;
  const outcome = pass.conditions.isTrue("Failed") ? "Failed" : "Succeeded";
  const message = pass.conditions.get(outcome)?.message || `the job ${outcome.toLowerCase()}`;
  pass.plan.workload.push({
    action: "patchStatus",
    name: workload.metadata.name,
    resourceVersion: workload.metadata.resourceVersion ?? "",
    status: { conditions: withConditions(workload, [{ type: "Finished", status: "True", reason: outcome, message }], pass.observed.now) },
  });
}

/**
 * What the Created condition adds for a job in a queue while the operator's integration is off:
 * Kueue may still admit its pods one by one (its pod integration reads their queue label).
 */
export function kueueIntegrationNote(job: TrainingJob, options: Pick<ReconcileOptions, "kueue">): string {
  const queue = job.spec.scheduling?.queueName;
  if (queue === undefined || admittedThroughWorkload(job, options)) return "";
  return `; scheduling.queueName is ${queue} but the operator runs without --kueue (chart value kueue.enabled): it makes no Workload, and the job's pods only carry the ${labels.kueueQueue} label, for Kueue's pod integration`;
}

function waitingMessage(name: string, queue: string): string {
  return `waiting for Kueue to admit Workload ${name} from LocalQueue ${queue}`;
}

/** Why Kueue has not admitted the Workload yet, in Kueue's words where it gave some. */
function pendingMessage(workload: Workload, queue: string): string {
  const name = workload.metadata.name;
  const reserved = workloadCondition(workload, "QuotaReserved");
  if (reserved?.status === "True") {
    const clusterQueue = workload.status?.admission?.clusterQueue;
    return `Kueue reserved quota for Workload ${name}${clusterQueue === undefined ? "" : ` in ClusterQueue ${clusterQueue}`}; waiting for its admission checks`;
  }
  const why = reserved?.status === "False" && reserved.message !== "" ? `: ${reserved.message}` : "";
  return `${waitingMessage(name, queue)}${why}`;
}

/** No pod of the job runs any more (terminating ones still do). */
function noPodRunning(pass: ReconcilePass): boolean {
  return pass.observed.pods.every(isFinishedPod);
}

/**
 * The job stopped: the Workload's admission is cleared on its /status, QuotaReserved False
 * (Pending, with the eviction's message) and Admitted False, as a job framework does after an
 * eviction. Kueue then queues the Workload again.
 */
function giveQuotaBack(pass: ReconcilePass, workload: Workload, evicted: KueueCondition): void {
  const conditions = withConditions(
    workload,
    [
      { type: "QuotaReserved", status: "False", reason: "Pending", message: evicted.message },
      { type: "Admitted", status: "False", reason: "NoReservation", message: "The workload has no reservation" },
    ],
    pass.observed.now,
  );
  pass.plan.workload.push({
    action: "patchStatus",
    name: workload.metadata.name,
    resourceVersion: workload.metadata.resourceVersion ?? "",
    status: { admission: null, conditions },
  });
}

/** Queued again at the job's new size: its pods stopped, then its Workload deleted (the next pass makes the new one). */
function requeue(pass: ReconcilePass, workload: Workload, message: string): void {
  stopJob(pass, "WaitingForQueue", message);
  if (noPodRunning(pass)) pass.plan.workload.push({ action: "delete", name: workload.metadata.name, uid: workload.metadata.uid ?? "" });
}
