/**
 * One level-based reconcile of a TrainingJob: from what is observed now (the job, its pods and
 * Service, its Kueue Workload, what its coordinator reports, the time) to what should be done
 * (objects to create and delete, the status it should have, the Events of its transitions, when
 * to look again). A pure
 * function: the operator applies the plan, and whatever is missed is found again next time,
 * since nothing here depends on remembering an earlier pass.
 *
 * This file holds the order of the job's lifecycle; each decision lives in the file named for it:
 * reported-status.ts (the coordinator's report, the Running condition), run-policy.ts (suspend,
 * activeDeadlineSeconds, backoffLimit), kueue-admission.ts (a job in a Kueue queue: its
 * Workload, waiting for Kueue, evictions), admission.ts (Admitted, gang timeout), desired-pods.ts
 * (creating and scaling, Rescaling) and finished-job-clean-up.ts (cleanPodPolicy, TTL). What the
 * API server then refuses to create is no observation of this pass: apply-plan.ts folds it into
 * the status it writes (create-failures.ts, the CreateFailed condition).
 */
import { admit } from "./admission.js";
import { createAndScale } from "./desired-pods.js";
import { cleanUpFinishedJob } from "./finished-job-clean-up.js";
import type { JsonObject } from "./json.js";
import { sameJson } from "./json.js";
import { admittedByKueue, finishWorkload, kueueIntegrationNote } from "./kueue-admission.js";
import { workerSelector } from "./names.js";
import { isFinishedPod, roleOf } from "./observed-pods.js";
import { coordinatorEndpoint } from "./pod-manifests.js";
import { ReconcilePass } from "./reconcile-pass.js";
import type { Observed, ReconcileOptions, ReconcilePlan } from "./reconcile-plan.js";
import { readReport, updateRunning } from "./reported-status.js";
import { deadlinePassed, restartFailedPods, resumeIfSuspended, suspend } from "./run-policy.js";
import { checkTrainingJob } from "./training-job-check.js";

export function reconcile(observed: Observed, options: ReconcileOptions): ReconcilePlan {
  const pass = new ReconcilePass(observed, options);
  pass.conditions.set(
    "Created",
    "True",
    "TrainingJobCreated",
    `TrainingJob ${pass.name} was accepted by the operator${kueueIntegrationNote(pass.job, options)}`,
  );
  pass.status.selector = workerSelector(pass.name);
  pass.status.coordinatorEndpoint = coordinatorEndpoint(pass.job);
  pass.status.replicas = pass.live.filter((pod) => roleOf(pod) === "worker" && !isFinishedPod(pod)).length;
  if (pass.job.metadata.deletionTimestamp === undefined) {
    step(pass);
    finishWorkload(pass);
  }
  return finishPlan(pass);
}

/** The job's lifecycle, first match wins. */
function step(pass: ReconcilePass): void {
  if (pass.finished()) return cleanUpFinishedJob(pass);
  readReport(pass);
  if (pass.finished()) return cleanUpFinishedJob(pass);
  if (deadlinePassed(pass) || refusedSpec(pass)) return cleanUpFinishedJob(pass);
  // A job in a Kueue queue has no pods until Kueue admits its Workload (it also handles its suspend).
  if (!admittedByKueue(pass)) return;
  if (pass.job.spec.runPolicy?.suspend === true) return suspend(pass);
  resumeIfSuspended(pass);
  restartFailedPods(pass);
  if (pass.finished()) return cleanUpFinishedJob(pass);
  // Before anything is created: a gang past its deadline gets nothing new.
  if (!admit(pass)) return cleanUpFinishedJob(pass);
  createAndScale(pass);
  updateRunning(pass);
  pass.pollAgainIn(pass.options.statusPollMs);
}

/**
 * A new job that its coordinator would refuse fails at once, naming the field, instead of
 * starting a coordinator that exits until backoffLimit gives up. (The API server checks the
 * CRD's schema; rules only the coordinator knows, such as async mode's, are checked here.)
 */
function refusedSpec(pass: ReconcilePass): boolean {
  if (pass.status.trainingReplicas !== undefined) return false;
  try {
    checkTrainingJob(pass.job as unknown as JsonObject);
    return false;
  } catch (error) {
    pass.finish(
      "Failed",
      "InvalidSpec",
      `${error instanceof Error ? error.message : String(error)}; fix the TrainingJob and create it again`,
    );
    return true;
  }
}

/** The status with its conditions and phase, set in the plan only when it changed; an Event per condition transition. */
function finishPlan(pass: ReconcilePass): ReconcilePlan {
  const { conditions, plan, status } = pass;
  status.conditions = conditions.list();
  const phase = conditions.phase();
  if (phase !== undefined) status.phase = phase;
  status.observedGeneration = pass.job.metadata.generation ?? 0;
  if (!sameJson(status, pass.before)) plan.status = status;
  for (const condition of conditions.transitions()) {
    const warning =
      condition.status !== "False" && (condition.type === "Failed" || condition.type === "Restarting" || condition.status === "Unknown");
    plan.events.push({ type: warning ? "Warning" : "Normal", reason: condition.reason, message: condition.message ?? "" });
  }
  return plan;
}
