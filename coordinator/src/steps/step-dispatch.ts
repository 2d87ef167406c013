/**
 * Handing out the work of the current generation's ranks: steps up to a lookahead beyond
 * the last completed one (no further than the step a stop was asked at), then, once every
 * step is done, the evaluation of the test set (evaluation.ts). The coordinator says when
 * steps completed, the generation cycle when a generation opened; this decides what each
 * rank is sent.
 */

import type { JobSpec, ReportEvaluationRequest } from "@trainfleet/proto";
import { JobPhase, TrainingMode, WorkerState } from "@trainfleet/proto";
import type { JobLifecycle } from "../job/job-lifecycle.js";
import type { RunPlan } from "../job/job-start.js";
import type { EvaluationResult } from "./evaluation.js";
import { Evaluation } from "./evaluation.js";
import type { LedgerAudit } from "./ledger-audit.js";

export interface StepDispatchOptions {
  /** Steps handed to a worker beyond the last completed one; none: 2, or 8 in async mode. */
  lookahead?: number | undefined;
  /** Told of every step handed out (--ledger-audit). */
  ledgerAudit?: LedgerAudit | undefined;
  /** The job's phase and reason, moved to Evaluating when the evaluation starts. */
  lifecycle: JobLifecycle;
}

export class StepDispatch {
  readonly #options: StepDispatchOptions;
  /** Told to stop (terminate): steps are handed out up to this one only. */
  #stopAt: number | undefined;
  #evaluation: Evaluation | undefined;

  constructor(options: StepDispatchOptions) {
    this.#options = options;
  }

  /** Whether a stop was asked for: no more steps past it, and no evaluation. */
  get stopping(): boolean {
    return this.#stopAt !== undefined;
  }

  /** Hands out no step from `step` on (the steps before it are still handed out). */
  stopAt(step: number): void {
    this.#stopAt = step;
  }

  /** After steps completed (or a generation opened): hand out more, or evaluate once every step is done. */
  afterSteps(plan: RunPlan): void {
    if (plan.tracker.completed >= plan.totalSteps) this.#startEvaluation(plan);
    else this.#assignSteps(plan);
  }

  /** A rank's evaluation counts; the result once every rank of the evaluation has reported. */
  reportEvaluation(memberId: string, request: ReportEvaluationRequest): EvaluationResult | undefined {
    return this.#evaluation?.report(memberId, request);
  }

  /** Hands out steps up to `lookahead` beyond the last completed one, so workers never wait on us (in async mode, further: nobody waits for anybody). */
  #assignSteps(plan: RunPlan): void {
    const lookahead = this.#options.lookahead ?? (isAsync(plan.spec) ? 8 : 2);
    const limit = Math.min(plan.totalSteps, this.#stopAt ?? Number.POSITIVE_INFINITY, plan.tracker.completed + lookahead);
    while (plan.samples.step < limit) {
      const { step, epoch, sampleIndices, globalBatchSize } = plan.samples.next(plan.workers.length);
      const generation = plan.generation;
      this.#options.ledgerAudit?.handedOut({ step, epoch, generation, sampleIndices });
      plan.workers.forEach((worker, rank) => {
        worker.outbox.push({
          kind: { case: "step", value: { generation, step, epoch, sampleIndices: Array.from(sampleIndices[rank]!), globalBatchSize } },
        });
      });
      // Where the ledger stands after this step, in case a checkpoint is due at the version it makes.
      plan.checkpoints?.cursorAt(plan.samples.position());
    }
  }

  /** Every rank of the current generation evaluates its part of the test set (again, if a membership change interrupted it). */
  #startEvaluation(plan: RunPlan): void {
    if (this.#stopAt !== undefined) return;
    const lifecycle = this.#options.lifecycle;
    const message = `evaluating version ${plan.totalSteps} on the test set (generation ${plan.generation})`;
    if (lifecycle.phase === JobPhase.RUNNING) lifecycle.apply("trainingDone", "Evaluating", message);
    else lifecycle.setReason("Evaluating", message);
    const ranks = plan.workers.length;
    this.#evaluation = new Evaluation(ranks);
    const total = Math.min(plan.spec.training!.evalSamples || plan.data.evalRecords, plan.data.evalRecords);
    plan.workers.forEach((worker, rank) => {
      worker.state = WorkerState.EVALUATING;
      worker.outbox.push({
        kind: { case: "evaluate", value: Evaluation.assignment(rank, ranks, total, plan.generation, plan.totalSteps) },
      });
    });
  }
}

/** Async mode: each worker pushes and pulls on its own, and shard versions count gradients, not steps. */
export function isAsync(spec: JobSpec): boolean {
  return spec.training!.mode === TrainingMode.ASYNC;
}
