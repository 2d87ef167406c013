/**
 * What becomes of a finished job: its pods are deleted by runPolicy.cleanPodPolicy (Running: the
 * ones still running; All; None), and the job itself ttlSecondsAfterFinished after its
 * completionTime. When the coordinator ended the job it also told its shards and workers to stop:
 * they get finishGraceMs to exit by themselves (and end Succeeded rather than killed). The
 * coordinator itself only serves its final status by then, and outcomes the operator decides stop
 * nobody, so those pods go at once.
 */
import { timestamp } from "./conditions.js";
import { isFinishedPod, roleOf } from "./observed-pods.js";
import type { ReconcilePass } from "./reconcile-pass.js";
import { runPolicyDefaults } from "./training-job.js";

/** Outcomes the operator decides itself: nobody told the job's pods to stop. */
const operatorOutcomes = new Set(["DeadlineExceeded", "GangTimeout", "BackoffLimitExceeded", "InvalidSpec"]);

export function cleanUpFinishedJob(pass: ReconcilePass): void {
  const { conditions, observed } = pass;
  const policy = pass.job.spec.runPolicy?.cleanPodPolicy ?? runPolicyDefaults.cleanPodPolicy;
  const outcome = conditions.get("Failed")?.status === "True" ? conditions.get("Failed") : conditions.get("Succeeded");
  const completedMs = Date.parse(pass.status.completionTime ?? timestamp(observed.now));
  const graceEndsMs = operatorOutcomes.has(outcome?.reason ?? "") ? 0 : completedMs + pass.options.finishGraceMs;
  const inGrace = observed.now.getTime() < graceEndsMs;
  for (const pod of pass.live) {
    if (policy === "None" || (policy === "Running" && isFinishedPod(pod))) continue;
    if (inGrace && roleOf(pod) !== "coordinator" && !isFinishedPod(pod)) {
      pass.pollAgainIn(graceEndsMs - observed.now.getTime());
      continue;
    }
    pass.deletePod(pod);
  }
  const ttl = pass.job.spec.runPolicy?.ttlSecondsAfterFinished;
  if (ttl === undefined) return;
  const expiresMs = completedMs + ttl * 1000;
  if (observed.now.getTime() >= expiresMs) pass.plan.deleteJob = true;
  else pass.pollAgainIn(expiresMs - observed.now.getTime());
}
