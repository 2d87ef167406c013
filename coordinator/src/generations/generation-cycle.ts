/**
 * The generation cycle of a started job. Each join or loss of a worker makes a new
 * generation: ranks are renumbered (regroup.ts), every shard is sent the generation's
 * assignment once the coordinator's state is saved (so that generation numbers only rise
 * across a restart), each shard says which version it holds (generation-opening.ts), and
 * the generation opens from the lowest of them: the step in flight is abandoned and handed
 * out again over the new ranks, on the same samples (the global batch is fixed). Below
 * workers.minWorkers, or while a shard is missing, the job pauses instead (job-pause.ts).
 *
 * It works on the plan, the members and the lifecycle, hands out steps through the
 * StepDispatch, and ends the job only through JobEnd: nothing here calls the coordinator.
 */
import { Code, isFinished, JobEventKind, JobPhase, TrainfleetError, WorkerState } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import type { JobEnd } from "../job/job-end.js";
import type { JobLifecycle } from "../job/job-lifecycle.js";
import type { RunPlan } from "../job/job-start.js";
import type { Member, Members } from "../membership/members.js";
import { coordinatorState } from "../state/coordinator-state.js";
import type { StateStore } from "../state/state-store.js";
import type { CoordinatorMetrics } from "../status/coordinator-metrics.js";
import type { StepDispatch } from "../steps/step-dispatch.js";
import { isAsync } from "../steps/step-dispatch.js";
import { GenerationOpening } from "./generation-opening.js";
import { JobPause, pauseTimeout } from "./job-pause.js";
import { missingShards, regroup } from "./regroup.js";

export interface GenerationCycleOptions {
  plan: RunPlan;
  members: Members;
  lifecycle: JobLifecycle;
  dispatch: Pick<StepDispatch, "afterSteps">;
  end: Pick<JobEnd, "fail" | "evaluation">;
  metrics: Pick<CoordinatorMetrics, "generationChanged">;
  logger: Logger;
  now: () => number;
  /** How long a shard may stay silent about a generation before it is sent the assignment again. */
  leaseMs: number;
  /** Where checkpoints go (sent to every shard); none: no checkpoints. */
  checkpointDir: string | undefined;
  /** Saved to before each generation's assignments go out. */
  stateStore: StateStore | undefined;
  /** The checkpoint the job was resumed from (--resume), named when it starts. */
  resumedFrom: string | undefined;
}

export class GenerationCycle {
  readonly plan: RunPlan;
  readonly #options: GenerationCycleOptions;
  readonly #pause: JobPause;
  /** The generation whose shards are reporting their versions; none once it is open. */
  #opening: GenerationOpening | undefined;

  constructor(options: GenerationCycleOptions) {
    this.#options = options;
    this.plan = options.plan;
    this.#pause = new JobPause(options.lifecycle, options.plan.spec.workers!, options.logger, options.now);
  }

  /** The generation being opened, if one is: none once it is open, or once the job has ended. */
  get opening(): GenerationOpening | undefined {
    return isFinished(this.#options.lifecycle.phase) ? undefined : this.#opening;
  }

  /** While paused: when the job fails. */
  get pauseDeadline(): number {
    return this.#pause.deadline;
  }

  /** Whether `member` has a rank in the open generation or in the one being opened. */
  hasRank(member: Member): boolean {
    return this.plan.workers.includes(member) || this.opening?.ranked.includes(member) === true;
  }

  /** Shard indices with no live member: their slices are gone until a shard registers again and the job goes back to a checkpoint. */
  missingShards(): number[] {
    return missingShards(this.#options.members.shards(), this.plan.spec.parameterServers!.shards);
  }

  /** The plan, for a report of `member`'s in `generation`; FAILED_PRECONDITION when the report is not for the open generation, or `member` has no rank in it. */
  current(member: Member, generation: number): RunPlan {
    const { plan } = this;
    const opening = this.opening;
    if (generation !== plan.generation || opening !== undefined) {
      const now = opening === undefined ? `at generation ${plan.generation}` : `opening generation ${opening.generation}`;
      throw new TrainfleetError(
        Code.FAILED_PRECONDITION,
        `generation: the job is ${now}, the report is for ${generation}; its step is handed out again in the new generation`,
        { field: "generation" },
      );
    }
    if (!plan.workers.includes(member))
      throw new TrainfleetError(Code.FAILED_PRECONDITION, `member_id: ${member.id} has no rank in generation ${plan.generation}`, {
        field: "member_id",
      });
    return plan;
  }

  /**
   * Workers joined or left: a new generation with the live workers (up to max_workers;
   * the others are standbys), or a pause when fewer than min_workers are left. A join
   * while evaluating leaves the evaluation alone: the worker waits as a standby.
   */
  regroup(why: string): void {
    const { plan } = this;
    const { lifecycle, members, logger, end } = this.#options;
    // Once evaluated, the job only finishes: nothing a member does changes the result.
    if (isFinished(lifecycle.phase) || end.evaluation !== undefined) return;
    // While a shard is missing nothing can run: the workers are counted when it is back.
    if (this.missingShards().length > 0) return lifecycle.changed();
    const { minWorkers, maxWorkers } = plan.spec.workers!;
    const phase = lifecycle.phase;
    const next = regroup({
      generation: plan.generation,
      ranks: plan.workers,
      opening: this.#opening?.ranked,
      phase,
      live: members.liveWorkers(),
      minWorkers,
      maxWorkers,
    });
    for (const member of next.standby) {
      member.state = WorkerState.STANDBY;
      member.rank = -1;
    }
    if (next.action === "keep") {
      logger.info(
        { standbys: next.standby.map((m) => m.id) },
        `${why}: it waits as a standby (the job ${phase === JobPhase.EVALUATING ? "is evaluating" : `has workers.maxWorkers = ${maxWorkers} workers`})`,
      );
      return lifecycle.changed();
    }
    if (next.action === "pause") {
      this.#opening = undefined;
      return this.#pause.forWorkers(why, next.ranked.length);
    }
    this.#begin(next.ranked, why);
  }

  /** Paused until every lost shard has a successor, then back to the newest checkpoint (or the start, when there is none). */
  pauseForShards(why: string): void {
    const { lifecycle, end } = this.#options;
    // Once evaluated, the job only finishes: saving the parameters fails the job itself if it needed the lost shard.
    if (end.evaluation !== undefined) return lifecycle.changed();
    this.#opening = undefined;
    this.#pause.forShards(why, this.missingShards(), this.plan.checkpoints?.last);
  }

  /** Shard `shardIndex` took generation `generation` and holds `version`: once every shard has, the generation opens. */
  shardReported(shardIndex: number, generation: number, version: number): void {
    const opening = this.opening;
    // A report for a generation already replaced by a newer one: that one is asked for anew.
    if (opening === undefined || generation !== opening.generation) return;
    const from = opening.report(shardIndex, version);
    if (from === undefined) return;
    this.#opening = undefined;
    this.#open(opening, from);
  }

  /** Sends the generation being opened again to the shards that have not answered within a lease. */
  resendIfSilent(): void {
    this.opening?.resendIfSilent(this.#options.now(), this.#options.leaseMs);
  }

  /** Fails the job (PauseTimeout) when it has been paused past the deadline. */
  checkPause(): void {
    const { lifecycle, now, end } = this.#options;
    const timedOut = pauseTimeout(
      { phase: lifecycle.phase, reason: lifecycle.reason, message: lifecycle.message, deadline: this.#pause.deadline },
      now(),
      this.plan.spec.workers!,
    );
    if (timedOut !== undefined) end.fail("PauseTimeout", timedOut);
  }

  /** Sends every shard the new generation's assignment; the generation opens once each has said which version it holds. */
  #begin(ranked: Member[], why: string): void {
    const { plan } = this;
    const { members, lifecycle, logger, metrics, now, stateStore: store, end } = this.#options;
    const generation = ++plan.generation;
    const shards = members.shards();
    const opening = new GenerationOpening(generation, ranked, why, shards.length);
    this.#opening = opening;
    metrics.generationChanged(plan.spec.jobId);
    lifecycle.setReason(
      lifecycle.phase === JobPhase.PENDING ? "Starting" : "Rescaling",
      `${why}: generation ${generation} of ${ranked.length} worker${ranked.length === 1 ? "" : "s"}; waiting for the shards' versions`,
    );
    logger.info({ generation, worldSize: ranked.length, why }, "generation begins");
    const { layout, shardRanges: ranges, spec, restores } = plan;
    const checkpointDir = this.#options.checkpointDir ?? "";
    // Over mutual TLS every worker has a certificate name: the shards take rank r's pushes only from ranked[r]'s.
    const rankIdentities = ranked.every((worker) => worker.identity !== "") ? ranked.map((worker) => worker.identity) : [];
    const send = () => {
      // Superseded by a newer generation (or the end) while the state was being saved.
      if (this.opening !== opening) return;
      for (const shard of shards) {
        const restore = restores?.[shard.shardIndex];
        const value = {
          spec,
          generation,
          worldSize: ranked.length,
          range: ranges[shard.shardIndex]!,
          parameterCount: BigInt(layout.parameterCount),
          checkpointDir,
          rankIdentities,
          ...(restore === undefined ? {} : { restore }),
        };
        opening.send(shard, { kind: { case: "shard", value } }, now());
      }
    };
    if (store === undefined) return send();
    // Saved before any shard hears of the generation, so that a restarted coordinator's generations are above every shard's.
    const state = coordinatorState(spec, this.#options.checkpointDir, generation, false, now());
    store
      .save(state)
      .then(send, (error: unknown) =>
        end.fail("StateNotSaved", `could not save the coordinator's state to ${store.description}: ${TrainfleetError.from(error).message}`),
      );
  }

  /** Every shard has reported: generation `opening` goes on from `version`, with the ranks it was begun with. */
  #open(opening: GenerationOpening, version: number): void {
    const { plan } = this;
    const { members, lifecycle, logger, dispatch, resumedFrom } = this.#options;
    const { generation } = opening;
    for (const shard of members.shards()) shard.outbox.push({ kind: { case: "openGeneration", value: { generation, version } } });
    // Async shards count a version per applied gradient, each on its own: the steps complete are the coordinator's count.
    if (isAsync(plan.spec)) version = plan.tracker.completed;
    const restored = plan.restores !== undefined;
    plan.restores = undefined;
    const starting = lifecycle.phase === JobPhase.PENDING;
    plan.tracker.newGeneration(opening.ranked.length, version);
    plan.samples.seek(version);
    plan.checkpoints?.generationOpened(generation, version);
    plan.workers = [...opening.ranked];
    const { spec, layout, shardRanges: shards } = plan;
    plan.workers.forEach((worker, rank) => {
      worker.rank = rank;
      worker.state = WorkerState.TRAINING;
      worker.outbox.push({
        kind: {
          case: "worker",
          value: { spec, generation, rank, worldSize: plan.workers.length, shards, parameterCount: BigInt(layout.parameterCount) },
        },
      });
    });
    const worldSize = plan.workers.length;
    const message = `training ${layout.parameterCount} parameters on ${worldSize} worker${worldSize === 1 ? "" : "s"} (generation ${generation}) and ${shards.length} shards for ${plan.totalSteps} steps`;
    if (lifecycle.phase === JobPhase.PENDING) lifecycle.apply("start", "Training", message);
    else if (lifecycle.phase === JobPhase.PAUSED) lifecycle.apply("resume", "Training", message);
    else lifecycle.setReason(lifecycle.phase === JobPhase.EVALUATING ? "Evaluating" : "Training", message);
    this.#pause.lifted();
    const fields = { jobId: spec.jobId, generation, worldSize, version, ranks: plan.workers.map((w) => w.id) };
    if (starting) {
      const resumed = resumedFrom === undefined ? {} : { resumedFrom, step: version };
      logger.info(
        { ...fields, shards: shards.length, totalSteps: plan.totalSteps, parameters: layout.parameterCount, ...resumed },
        restored && version > 0 ? "job resumed from its checkpoint" : "job started",
      );
    } else {
      logger.info({ ...fields, why: opening.why, restored }, "generation opened");
      lifecycle.publish({
        kind: JobEventKind.GENERATION_CHANGED,
        message: `${opening.why}: generation ${generation} of ${worldSize} worker${worldSize === 1 ? "" : "s"} goes on from step ${version}`,
      });
    }
    dispatch.afterSteps(plan);
  }
}
