/**
 * What the job's coordinator reports, in the TrainingJob's status: progress (epoch, step, loss,
 * accuracy, throughput, workers training, the last checkpoint), the outcome (Succeeded or Failed,
 * with the coordinator's reason), and the Running condition from its phase. A coordinator that has
 * not answered yet is CoordinatorStarting; one that does not answer is Unknown, never guessed at.
 * Once its pod has ended, the outcome is read from how it ended (coordinator-exit.ts): the exit
 * code says whether the coordinator ended the job itself, its termination message why; only a
 * coordinator that did not (a crash) is left to run-policy.ts to restart. A coordinator that
 * ended the job wrote its output (job-output.ts): status.output says where. A pod the scheduler
 * cannot place (a missing claim, no node with room) is named in the Running condition with the
 * scheduler's words: a coordinator as CoordinatorUnschedulable, shards and workers the
 * coordinator waits for as MembersUnschedulable, workers of a training job in its message.
 */

import type { V1Pod } from "@kubernetes/client-node";
import { JobPhase, WorkerState } from "@trainfleet/proto";
import { timestamp } from "./conditions.js";
import { finalWordIn, jobFailedExitCode } from "./coordinator-exit.js";
import type { CoordinatorReport } from "./coordinator-status.js";
import { outputStatus } from "./job-output.js";
import type { Role } from "./names.js";
import { coordinatorName } from "./names.js";
import { howItEnded, roleOf } from "./observed-pods.js";
import type { ReconcilePass } from "./reconcile-pass.js";

const trainingStates = new Set([WorkerState.TRAINING, WorkerState.EVALUATING]);

/** Progress and the outcome as the coordinator reports them, or as its ended pod says (endedJob). */
export function readReport(pass: ReconcilePass): void {
  const { status } = pass;
  const report = pass.observed.coordinator;
  if (report !== undefined && "status" in report) {
    const reported = report.status;
    status.epoch = reported.epoch;
    status.step = reported.step;
    if (Number.isFinite(reported.loss) && reported.loss >= 0) status.loss = reported.loss;
    if (reported.testAccuracy !== undefined) status.accuracy = reported.testAccuracy;
    status.samplesPerSecond = reported.samplesPerSecond;
    status.readyReplicas = reported.workers.filter((worker) => trainingStates.has(worker.state)).length;
    if (reported.lastCheckpointVersion !== undefined && reported.lastCheckpointUnixMs > 0n) {
      status.lastCheckpoint = { step: reported.lastCheckpointVersion, time: timestamp(new Date(Number(reported.lastCheckpointUnixMs))) };
    }
    const finishedAt = reported.finishedUnixMs > 0n ? new Date(Number(reported.finishedUnixMs)) : undefined;
    if (reported.phase === JobPhase.SUCCEEDED) {
      pass.finish("Succeeded", reported.reason || "Completed", reported.message || "the coordinator reports the job succeeded");
      reportOutput(pass, "Succeeded", finishedAt);
    }
    if (reported.phase === JobPhase.FAILED) {
      pass.finish("Failed", reported.reason || "CoordinatorFailed", reported.message || "the coordinator reports the job failed");
      reportOutput(pass, "Failed", finishedAt);
    }
    return;
  }
  const coordinator = pass.live.find((pod) => roleOf(pod) === "coordinator");
  const outcome = coordinator === undefined ? undefined : endedJob(coordinator);
  if (outcome !== undefined) {
    pass.finish(outcome.phase, outcome.reason, outcome.message);
    reportOutput(pass, outcome.phase, undefined);
  }
}

/** status.output, once the coordinator itself ended the job (so it wrote there): when it says, else the completion time. */
function reportOutput(pass: ReconcilePass, outcome: "Succeeded" | "Failed", finishedAt: Date | undefined): void {
  const writtenAt = finishedAt === undefined ? (pass.status.completionTime ?? timestamp(pass.observed.now)) : timestamp(finishedAt);
  const output = outputStatus(pass.job, outcome, writtenAt);
  if (output !== undefined) pass.status.output = output;
}

/** A reason as the CRD takes it (CamelCase); anything else is not used as one. */
const reasonPattern = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;

/**
 * The outcome of the job whose coordinator pod ended by ending the job: exit 0 (Succeeded) or
 * jobFailedExitCode (Failed), with the reason and message of its final word when it left one.
 * Undefined for a pod that runs, or failed any other way (a crash).
 */
function endedJob(pod: V1Pod): { phase: "Succeeded" | "Failed"; reason: string; message: string } | undefined {
  const phase = pod.status?.phase;
  const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
  const name = pod.metadata?.name ?? "the coordinator's pod";
  if (phase === "Succeeded" || (phase === "Failed" && terminated?.exitCode === jobFailedExitCode)) {
    const outcome = phase;
    const word = finalWordIn(terminated?.message);
    if (word !== undefined && word.phase === outcome && reasonPattern.test(word.reason))
      return { phase: outcome, reason: word.reason, message: word.message || `the coordinator reports the job ${outcome.toLowerCase()}` };
    return outcome === "Succeeded"
      ? { phase: outcome, reason: "CoordinatorSucceeded", message: `pod ${name} exited 0: the job is done` }
      : {
          phase: outcome,
          reason: "CoordinatorFailed",
          message: `${howItEnded(pod)}: the coordinator failed the job (exit code ${jobFailedExitCode}) and left no reason`,
        };
  }
  return undefined;
}

/**
 * What the scheduler said of a coordinator pod it cannot place (PodScheduled False): a claim
 * that does not exist or is not bound (spec.output, spec.checkpoints, spec.storage), no node
 * with room. Such a pod is created and stays Pending, so nothing else would say why.
 */
function whyUnschedulable(pod: V1Pod | undefined): string | undefined {
  if (pod?.status?.phase !== "Pending") return undefined;
  const condition = pod.status.conditions?.find((candidate) => candidate.type === "PodScheduled" && candidate.status === "False");
  if (condition === undefined) return undefined;
  return [condition.reason, condition.message].filter((part) => part !== undefined && part !== "").join(": ") || "not scheduled";
}

/** At most this many pods are named in a condition's message; the rest are counted. */
const podsNamed = 3;

/** "pod A cannot be scheduled: Unschedulable: ...; ..." for the job's pods of `roles` the scheduler cannot place, or undefined. */
function unschedulableMembers(pass: ReconcilePass, roles: readonly Role[]): string | undefined {
  const stuck = pass.live
    .filter((pod) => roles.includes(roleOf(pod) as Role))
    .map((pod) => [pod.metadata?.name, whyUnschedulable(pod)] as const)
    .filter(([, why]) => why !== undefined)
    .sort(([a], [b]) => (a ?? "").localeCompare(b ?? "", "en", { numeric: true }));
  if (stuck.length === 0) return undefined;
  const named = stuck.slice(0, podsNamed).map(([name, why]) => `pod ${name} cannot be scheduled: ${why}`);
  if (stuck.length > podsNamed) named.push(`and ${stuck.length - podsNamed} more pods`);
  return named.join("; ");
}

/** The coordinator answered, and trains. */
export function coordinatorTraining(report: CoordinatorReport | undefined): boolean {
  return report !== undefined && "status" in report && report.status.phase === JobPhase.RUNNING;
}

/** The Running condition, from the coordinator's phase. */
export function updateRunning(pass: ReconcilePass): void {
  const { conditions } = pass;
  const report = pass.observed.coordinator;
  if (report === undefined) {
    const unschedulable = whyUnschedulable(pass.live.find((pod) => roleOf(pod) === "coordinator"));
    if (unschedulable !== undefined)
      conditions.set("Running", "False", "CoordinatorUnschedulable", `pod ${coordinatorName(pass.name)} cannot start: ${unschedulable}`);
    else conditions.clear("Running", "CoordinatorStarting", `pod ${coordinatorName(pass.name)} is not running yet`);
    return;
  }
  if ("unreachable" in report) {
    if (conditions.get("Running") !== undefined) conditions.set("Running", "Unknown", "CoordinatorUnreachable", report.unreachable);
    return;
  }
  const reported = report.status;
  switch (reported.phase) {
    case JobPhase.RUNNING: {
      // A worker added by a scale-up that cannot be placed: the job trains on without it, and says why.
      const stuck = unschedulableMembers(pass, ["worker"]);
      conditions.set(
        "Running",
        "True",
        "Training",
        `epoch ${reported.epoch} of ${reported.epochs}, step ${reported.step} of ${reported.totalSteps}${stuck === undefined ? "" : `; ${stuck}`}`,
      );
      break;
    }
    case JobPhase.EVALUATING:
      conditions.set("Running", "True", "Evaluating", "training is done; the workers evaluate the test set");
      break;
    case JobPhase.PAUSED:
      conditions.set("Running", "False", reported.reason || "Paused", reported.message);
      break;
    default: {
      const waiting = reported.message || "waiting for the shards and workers to register";
      const stuck = unschedulableMembers(pass, ["parameter-server", "worker"]);
      if (stuck !== undefined) conditions.set("Running", "False", "MembersUnschedulable", `${stuck}; the coordinator is ${waiting}`);
      else conditions.set("Running", "False", reported.reason || "WaitingForMembers", waiting);
    }
  }
}
