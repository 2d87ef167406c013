/**
 * The end of a job, whichever way it comes: after its evaluation (the trained parameters
 * saved, the checkpoints in flight settled, the shards' final counters in, then Succeeded),
 * or by fail() (a policy gave up, or SIGTERM). Either way every live member is told to
 * stop, the final status is taken, and the state is saved as finished, so that a
 * coordinator restarted after the end does not run the job again. The modules that decide
 * to end the job call this; it calls none of them. A generation being opened ends with the
 * job: GenerationCycle.opening reads the phase.
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { JobStatus, ShardRangeSchema } from "@trainfleet/proto";
import { isFinished, JobEventKind, TrainfleetError, WorkerState } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import type { ParameterLayout, ResolvedJobSpec } from "@trainfleet/spec";
import type { Members } from "../membership/members.js";
import { coordinatorState } from "../state/coordinator-state.js";
import type { StateStore } from "../state/state-store.js";
import type { EvaluationResult } from "../steps/evaluation.js";
import type { JobLifecycle } from "./job-lifecycle.js";
import type { RunPlan } from "./job-start.js";

/** A job whose training and evaluation are done, as onTrained gets it. */
export interface TrainedJob {
  spec: ResolvedJobSpec;
  layout: ParameterLayout;
  version: number;
  shards: Array<MessageInitShape<typeof ShardRangeSchema>>;
}

export interface JobEndOptions {
  lifecycle: JobLifecycle;
  members: Members;
  logger: Logger;
  now: () => number;
  /** Called once training and evaluation are done, before members are told to stop. */
  onTrained?: ((job: TrainedJob) => Promise<void>) | undefined;
  /** How long to wait for checkpoints still being written (default 60 s). */
  checkpointWaitMs?: number | undefined;
  checkpointDir?: string | undefined;
  /** Where the finished state is saved. */
  stateStore?: StateStore | undefined;
  /** Whether a stop was asked for (StepDispatch.stopping): the job then ends on the stop's path, not this one. */
  dispatch: { readonly stopping: boolean };
  /** The job's status as it stands: the one the job ends with is taken when it ends. */
  status: () => JobStatus;
}

export class JobEnd {
  readonly #options: JobEndOptions;
  readonly #done: Promise<JobStatus>;
  #resolveDone!: (status: JobStatus) => void;
  #spec: ResolvedJobSpec | undefined;
  #plan: RunPlan | undefined;
  #evaluation: EvaluationResult | undefined;
  #finishedAt = 0;

  constructor(options: JobEndOptions) {
    this.#options = options;
    this.#done = new Promise((resolve) => (this.#resolveDone = resolve));
  }

  /** Resolves with the final status when the job has succeeded or failed. */
  done(): Promise<JobStatus> {
    return this.#done;
  }

  /** When the job ended (Unix ms); 0 until then. */
  get finishedAt(): number {
    return this.#finishedAt;
  }

  /** The test set's result, once every rank has evaluated: from then on the job only finishes. */
  get evaluation(): EvaluationResult | undefined {
    return this.#evaluation;
  }

  /** The job whose end this is (its state is saved under its spec). */
  submitted(spec: ResolvedJobSpec): void {
    this.#spec = spec;
  }

  /** The started job's plan (its generation goes into the saved state). */
  started(plan: RunPlan): void {
    this.#plan = plan;
  }

  /** Every rank has evaluated: the result goes into the status, then the job finishes. */
  evaluated(result: EvaluationResult, plan: RunPlan): void {
    this.#evaluation = result;
    this.#options.logger.info({ testAccuracy: result.accuracy, testLoss: result.loss, samples: result.samples }, "evaluation complete");
    this.#options.lifecycle.publish({ kind: JobEventKind.EVALUATION_DONE, testAccuracy: result.accuracy, testLoss: result.loss });
    void this.#finishTraining(plan);
  }

  /** Fails the job (for example on SIGTERM) and tells every member to stop; nothing once it has ended. */
  fail(reason: string, message: string): void {
    const { lifecycle, logger } = this.#options;
    if (isFinished(lifecycle.phase)) return;
    lifecycle.apply("fail", reason, message);
    logger.error({ reason }, message);
    this.#finish();
  }

  async #finishTraining(plan: RunPlan): Promise<void> {
    if (this.#options.dispatch.stopping) return;
    try {
      await this.#options.onTrained?.({ spec: plan.spec, layout: plan.layout, version: plan.totalSteps, shards: plan.shardRanges });
    } catch (error) {
      this.fail("ExportFailed", `could not save the trained parameters: ${TrainfleetError.from(error).message}`);
      return;
    }
    // Periodic checkpoints still being written (the last step's, say) are finished first.
    await plan.checkpoints?.settle(this.#options.checkpointWaitMs ?? 60_000);
    await this.#shardCountersAt(plan.totalSteps, 2_000);
    const accuracy = ((this.#evaluation?.accuracy ?? 0) * 100).toFixed(2);
    this.#options.lifecycle.apply("evaluationDone", "Completed", `trained ${plan.totalSteps} steps; test accuracy ${accuracy}%`);
    this.#finish();
  }

  /**
   * Waits (at most `waitMs`) until every live shard's heartbeat counters are from version
   * `version` on, so that the final status counts the traffic of the last steps too. Shards
   * heartbeat at least once a second.
   */
  async #shardCountersAt(version: number, waitMs: number): Promise<void> {
    const { members, lifecycle } = this.#options;
    const signal = AbortSignal.timeout(waitMs);
    const behind = () => members.shards().some((shard) => shard.state !== WorkerState.LOST && (shard.shardStats?.version ?? -1) < version);
    while (behind() && !signal.aborted) await lifecycle.changedSince(lifecycle.revision, signal);
  }

  #finish(): void {
    const { lifecycle, members, logger, now } = this.#options;
    this.#finishedAt = now();
    const result = this.#evaluation;
    const tested = result === undefined ? {} : { testAccuracy: result.accuracy, testLoss: result.loss };
    lifecycle.publish({ kind: JobEventKind.FINISHED, ...tested });
    for (const member of members.all()) {
      if (member.state === WorkerState.LOST) continue;
      member.outbox.push({ kind: { case: "stop", value: { reason: lifecycle.reason } } });
      member.outbox.close();
      member.state = WorkerState.STOPPED;
    }
    lifecycle.changed();
    const status = this.#options.status();
    // A coordinator restarted after the end must not run the job again.
    const store = this.#options.stateStore;
    const spec = this.#spec;
    const saved =
      store === undefined || spec === undefined
        ? Promise.resolve()
        : store.save(coordinatorState(spec, this.#options.checkpointDir, this.#plan?.generation ?? 0, true, now()));
    saved
      .catch((error: unknown) =>
        logger.error({ err: TrainfleetError.from(error).message }, `could not save the finished state to ${store!.description}`),
      )
      .finally(() => this.#resolveDone(status));
  }
}
