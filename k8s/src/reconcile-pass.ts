/**
 * One reconcile pass in progress, shared by the decisions that reconcile.ts makes in turn: the job
 * and what was observed, the status being built (the job's own, with its conditions kept and its
 * phase derived again at the end), the plan being filled, and the steps every decision uses:
 * finishing the job, deleting a pod (once), and looking again no later than some time.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { Conditions, timestamp } from "./conditions.js";
import type { FlavorSteering } from "./kueue-flavors.js";
import type { Role } from "./names.js";
import { isTerminating } from "./observed-pods.js";
import type { Observed, ReconcileOptions, ReconcilePlan } from "./reconcile-plan.js";
import type { TrainingJob, TrainingJobStatus } from "./training-job.js";

export class ReconcilePass {
  readonly plan: ReconcilePlan = {
    secrets: { tokens: false, members: [] },
    renewSecrets: [],
    create: [],
    deletePods: [],
    workload: [],
    status: undefined,
    events: [],
    deleteJob: false,
    requeueAfterMs: undefined,
  };
  readonly job: TrainingJob;
  readonly name: string;
  /** The status as the job has it now. */
  readonly before: TrainingJobStatus;
  /** The status being built: `before` without its conditions and phase, which come from `conditions`. */
  readonly status: TrainingJobStatus;
  readonly conditions: Conditions;
  /** The job's pods that are not terminating. */
  readonly live: V1Pod[];
  /** The job comes back from suspension in this pass: its workers return, which is no rescale. */
  resumed = false;
  /** Where Kueue's admission sends the pods of each role (kueue-flavors.ts); none without Kueue. */
  steering: ReadonlyMap<Role, FlavorSteering> = new Map();

  constructor(
    readonly observed: Observed,
    readonly options: ReconcileOptions,
  ) {
    this.job = observed.job;
    this.name = this.job.metadata.name;
    this.before = this.job.status ?? {};
    this.status = { ...this.before };
    delete this.status.conditions;
    delete this.status.phase;
    this.conditions = new Conditions(this.before.conditions, observed.now, this.job.metadata.generation);
    this.live = observed.pods.filter((pod) => !isTerminating(pod));
  }

  finished(): boolean {
    return this.conditions.isTrue("Succeeded") || this.conditions.isTrue("Failed");
  }

  finish(outcome: "Succeeded" | "Failed", reason: string, message: string): void {
    this.conditions.set(outcome, "True", reason, message);
    for (const type of ["Running", "Rescaling", "Restarting"] as const)
      this.conditions.clear(
        type,
        outcome === "Succeeded" ? "JobSucceeded" : "JobFailed",
        `the job ${outcome === "Succeeded" ? "succeeded" : "failed"}: ${reason}`,
      );
    this.status.completionTime ??= timestamp(this.observed.now);
  }

  deletePod(pod: V1Pod): void {
    const name = pod.metadata?.name;
    const uid = pod.metadata?.uid;
    if (name !== undefined && uid !== undefined && !this.plan.deletePods.some((entry) => entry.uid === uid))
      this.plan.deletePods.push({ name, uid });
  }

  pollAgainIn(ms: number): void {
    const after = Math.max(0, Math.ceil(ms));
    this.plan.requeueAfterMs = this.plan.requeueAfterMs === undefined ? after : Math.min(this.plan.requeueAfterMs, after);
  }
}
