/**
 * The parts of runPolicy that act on a job while it runs: suspend (every pod deleted) and resume
 * (for a job that Kueue admits, kueue-admission.ts suspends it through its Workload);
 * activeDeadlineSeconds; and backoffLimit, which counts the restarts of the job after its
 * coordinator or a shard failed (a failed worker is replaced without counting). What happens once
 * the job has finished (cleanPodPolicy, ttlSecondsAfterFinished) is finished-job-clean-up.ts.
 */
import { howItEnded, roleOf } from "./observed-pods.js";
import type { ReconcilePass } from "./reconcile-pass.js";
import { coordinatorTraining } from "./reported-status.js";
import { runPolicyDefaults, shardCount } from "./training-job.js";

/** Fails the job with DeadlineExceeded once activeDeadlineSeconds have passed since startTime; until then, looks again at the deadline. */
export function deadlinePassed(pass: ReconcilePass): boolean {
  const seconds = pass.job.spec.runPolicy?.activeDeadlineSeconds;
  if (seconds === undefined || pass.status.startTime === undefined) return false;
  const deadlineMs = Date.parse(pass.status.startTime) + seconds * 1000;
  if (pass.observed.now.getTime() < deadlineMs) {
    pass.pollAgainIn(deadlineMs - pass.observed.now.getTime());
    return false;
  }
  pass.finish("Failed", "DeadlineExceeded", `the job was active longer than runPolicy.activeDeadlineSeconds (${seconds} s)`);
  return true;
}

/** Suspended: no pods (the coordinator checkpoints on SIGTERM); resuming starts them again. */
export function suspend(pass: ReconcilePass, because = ""): void {
  stopJob(pass, "Suspended", `runPolicy.suspend is true: the job's pods are deleted until it is false again${because}`);
}

/**
 * The job holds no pods: each is deleted (the coordinator checkpoints on SIGTERM) and the job is
 * Suspended with `reason`, until it may run again (resumed, or admitted by Kueue: kueue-admission.ts).
 */
export function stopJob(pass: ReconcilePass, reason: string, message: string): void {
  for (const pod of pass.live) pass.deletePod(pod);
  pass.conditions.set("Suspended", "True", reason, message);
  pass.conditions.clear("Running", "Suspended", "the job is suspended");
  pass.conditions.clear("Admitted", "Suspended", "the job is suspended");
  pass.conditions.clear("Rescaling", "Suspended", "the job is suspended");
  // As for a Kubernetes Job: activeDeadlineSeconds counts from the last resume.
  delete pass.status.startTime;
}

/** A job that was suspended and is not any more comes back in this pass. */
export function resumeIfSuspended(pass: ReconcilePass): void {
  if (!pass.conditions.isTrue("Suspended")) return;
  pass.conditions.set("Suspended", "False", "Resumed", "the job was resumed (runPolicy.suspend is false)");
  pass.resumed = true;
}

/**
 * Failed pods are deleted and made again. A coordinator or shard failure restarts the job
 * from its newest checkpoint and counts against backoffLimit; a lost worker does not count:
 * the job goes on without it. A coordinator pod that failed by failing the job (its exit code
 * says so: coordinator-exit.ts) never gets here: readReport (reported-status.ts) has finished
 * the job with the coordinator's reason first, since starting it again would run the job afresh.
 */
export function restartFailedPods(pass: ReconcilePass): void {
  const { conditions, status } = pass;
  const failed = pass.live.filter((pod) => pod.status?.phase === "Failed");
  const restarted = failed.filter((pod) => roleOf(pod) !== "worker");
  for (const pod of failed) {
    if (roleOf(pod) === "worker")
      pass.plan.events.push({
        type: "Warning",
        reason: "WorkerPodFailed",
        message: `${howItEnded(pod)}; it is made again (lost workers do not count against runPolicy.backoffLimit)`,
      });
  }
  if (restarted.length === 0) {
    for (const pod of failed) pass.deletePod(pod);
    if (conditions.isTrue("Restarting") && coordinatorTraining(pass.observed.coordinator) && coreMembersRunning(pass)) {
      conditions.set(
        "Restarting",
        "False",
        "Recovered",
        "the coordinator and every shard run again, and the coordinator reports the job training",
      );
    }
    return;
  }
  const restarts = (status.restarts ?? 0) + 1;
  const limit = pass.job.spec.runPolicy?.backoffLimit ?? runPolicyDefaults.backoffLimit;
  const what = restarted.map(howItEnded).join("; ");
  if (restarts > limit) {
    // The failed pods stay, for their logs.
    pass.finish(
      "Failed",
      "BackoffLimitExceeded",
      `${what}; the job was already restarted ${restarts - 1} times, runPolicy.backoffLimit is ${limit}`,
    );
    return;
  }
  for (const pod of failed) pass.deletePod(pod);
  status.restarts = restarts;
  const role = restarted.some((pod) => roleOf(pod) === "coordinator") ? "CoordinatorFailed" : "ParameterServerFailed";
  conditions.set("Restarting", "True", role, `${what}; restart ${restarts} of at most ${limit}, from the newest checkpoint`);
}

/** The coordinator and every shard have a running pod. */
function coreMembersRunning(pass: ReconcilePass): boolean {
  const running = pass.live.filter((pod) => roleOf(pod) !== "worker" && pod.status?.phase === "Running").length;
  return running === 1 + shardCount(pass.job);
}
