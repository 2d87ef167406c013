/**
 * The coordinator of one job: membership, generations, the steps each rank runs,
 * progress, evaluation and the end of the job. It holds the state; the gRPC server
 * (coordinator-server.ts) only translates calls into these methods. The job's phase,
 * reason, status revision and JobEvents are recorded by its JobLifecycle (job-lifecycle.ts);
 * the steps and the evaluation each rank is sent are handed out by its StepDispatch
 * (step-dispatch.ts).
 *
 * Membership is elastic. Each join or loss of a worker makes a new generation: ranks are
 * renumbered (roster.ts), every shard is told and reports the version it holds
 * (generation-opening.ts), and the generation goes on from the lowest of them: the step in
 * flight is abandoned and handed out again over the new ranks, on the same samples (the
 * global batch is fixed). No process restarts. Below workers.min_workers the job pauses
 * until enough workers are in again, or fails when the pause deadline passes.
 *
 * A worker that exits on an error no new assignment mends reports it first (ReportFailure):
 * it is lost at once, its reason goes into its status, and workers.replicas such reports
 * with no step completed in between fail the job with reason WorkerFailed
 * (worker-failures.ts), instead of a pause that runs out or a crash loop nobody sees.
 *
 * A lost shard takes its slice with it: the job pauses until a shard process of that index
 * registers again, then goes back to the newest checkpoint, every shard restoring its
 * slice (checkpoint-restore.ts). A restarted coordinator does the same from the state it
 * saved (StateStore: the spec, the checkpoint folder, the newest generation begun), which
 * it saves before each generation's assignments go out, so generation numbers only rise.
 */
import { Code, JobEventKind, JobPhase, MemberRole, Placement, TrainfleetError, WorkerState, invalidField } from "@trainfleet/proto";
import type { JobSpec, JobStatus, ParameterServerStats, RegisterRequest, ReportCheckpointRequest, ReportEvaluationRequest, ReportFailureRequest, ReportGenerationRequest, ReportProgressRequest } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import type { ParameterLayout } from "@trainfleet/spec";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ShardRangeSchema } from "@trainfleet/proto";
import { isFinished } from "./job-phase.js";
import { JobLifecycle, memberFields } from "./job-lifecycle.js";
import { Members } from "../membership/members.js";
import type { AssignmentInit, Member } from "../membership/members.js";
import type { CompletedStep } from "../steps/step-tracker.js";
import { CoordinatorMetrics } from "../status/coordinator-metrics.js";
import type { EvictionCause } from "../status/coordinator-metrics.js";
import { DownsampledSeries } from "../status/downsampled-series.js";
import { recordShardStats, recordTiming } from "../membership/member-status.js";
import { jobStatus } from "../status/job-status.js";
import type { LoadedCheckpoint } from "../checkpoints/checkpoint-store.js";
import type { EventBus } from "../events/event-bus.js";
import type { LedgerAudit } from "../steps/ledger-audit.js";
import { JobEventRecorder } from "../events/job-event-recorder.js";
import { initialRestore, startJob } from "./job-start.js";
import { goBackPoint } from "../checkpoints/checkpoint-restore.js";
import type { GoBack } from "../checkpoints/checkpoint-restore.js";
import type { CoordinatorState } from "../state/coordinator-state.js";
import type { StateStore } from "../state/state-store.js";
import type { Plan } from "./job-start.js";
import { chooseRanks } from "../membership/roster.js";
import { GenerationOpening } from "../generations/generation-opening.js";
import { StepDispatch, isAsync } from "../steps/step-dispatch.js";
import { stragglers } from "../membership/stragglers.js";
import { WorkerFailures, failedWorker, validateFailureReport } from "../membership/worker-failures.js";

export interface CoordinatorOptions {
  /** A resolved spec (see resolveJobSpec), or none to wait for SubmitJob. */
  spec?: JobSpec | undefined;
  leaseMs: number;
  logger: Logger;
  now?: () => number;
  /** Steps handed to a worker beyond the last completed one, so it never waits on us. */
  lookahead?: number;
  /** Called once training and evaluation are done, before members are told to stop. */
  onTrained?: (job: TrainedJob) => Promise<void>;
  /** Where checkpoints go (a folder every member reaches); none: no checkpoints, not even on SIGTERM. */
  checkpointDir?: string | undefined;
  /** A verified checkpoint to resume from (loadCheckpoint); the spec must be its spec. */
  resume?: LoadedCheckpoint | undefined;
  /** How long to wait for the shards' files of a checkpoint on stop (default 60 s). */
  checkpointWaitMs?: number;
  /** Records which samples each completed step consumed (--ledger-audit). */
  ledgerAudit?: LedgerAudit | undefined;
  /** Where lifecycle JobEvents and per-step StepMetrics go (hints; the status is the truth). None: not published. */
  events?: EventBus | undefined;
  /** Where the state a restarted coordinator resumes from is saved. None: a restart starts the job afresh. */
  stateStore?: StateStore | undefined;
  /** This coordinator was restarted with the job running: generations continue above this one, and every shard is restored (from `resume`, or to the initial parameters). */
  restartedAt?: { generation: number } | undefined;
}

export interface TrainedJob {
  spec: JobSpec;
  layout: ParameterLayout;
  version: number;
  shards: Array<MessageInitShape<typeof ShardRangeSchema>>;
}

export class Coordinator {
  readonly #options: CoordinatorOptions;
  readonly #now: () => number;
  readonly #members: Members;
  #spec: JobSpec | undefined;
  #plan: Plan | undefined;
  /** The generation whose shards are reporting their versions; none once it is open. */
  #opening: GenerationOpening | undefined;
  /** While paused below min_workers: when the job fails. */
  #pauseDeadline = 0;
  #testAccuracy: number | undefined;
  #testLoss: number | undefined;
  #startedAt = 0;
  #finishedAt = 0;
  /** When the first worker registered (a restarted coordinator starts with min_workers after a lease). */
  #firstWorkerAt: number | undefined;
  /** The training loss of every completed step, at most 200 points (see JobStatus.loss_history). */
  readonly #lossHistory = new DownsampledSeries(200);
  /** Prometheus metrics, served at /metrics by the status server. */
  readonly metrics: CoordinatorMetrics;
  readonly #done: Promise<JobStatus>;
  #resolveDone!: (status: JobStatus) => void;
  readonly #events: JobEventRecorder | undefined;
  /** Phase, reason and message, the status revision, and the JobEvents that announce them. */
  readonly #lifecycle: JobLifecycle;
  /** Fatal failures workers reported since the last completed step. */
  readonly #failures = new WorkerFailures();
  /** The steps, and then the evaluation, each rank of the current generation is sent. */
  readonly #dispatch: StepDispatch;

  constructor(options: CoordinatorOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#members = new Members(options.leaseMs, this.#now);
    this.metrics = new CoordinatorMetrics(() => this.status(), this.#now);
    this.#done = new Promise((resolve) => (this.#resolveDone = resolve));
    this.#events = options.events === undefined ? undefined : new JobEventRecorder(options.events, options.logger, this.#now);
    this.#lifecycle = new JobLifecycle(this.#events);
    this.#dispatch = new StepDispatch({ lookahead: options.lookahead, ledgerAudit: options.ledgerAudit, lifecycle: this.#lifecycle });
    if (options.spec !== undefined) this.submit(options.spec);
  }

  /** Resolves with the final status when the job has succeeded or failed. */
  done(): Promise<JobStatus> {
    return this.#done;
  }

  get revision(): number {
    return this.#lifecycle.revision;
  }

  submit(spec: JobSpec): void {
    if (this.#spec !== undefined) throw new TrainfleetError(Code.ALREADY_EXISTS, `this coordinator already runs job "${this.#spec.jobId}"; start another coordinator for another job`);
    const every = spec.checkpoints?.everySteps ?? 0;
    if (every > 0 && this.#options.checkpointDir === undefined) {
      throw new TrainfleetError(Code.FAILED_PRECONDITION, `spec.checkpoints.everySteps: ${every}, but this coordinator has no checkpoint folder; start it with --checkpoint-dir`, { field: "spec.checkpoints.everySteps" });
    }
    this.#spec = spec;
    this.#lifecycle.submitted(spec.jobId);
    this.metrics.jobSubmitted(spec.jobId);
    this.#lifecycle.setReason("WaitingForMembers", this.#waitingMessage());
    this.#options.logger.info({ jobId: spec.jobId }, "job submitted");
    this.#lifecycle.publish({ kind: JobEventKind.SUBMITTED });
    this.#maybeStart();
  }

  register(request: RegisterRequest): { memberId: string; jobId: string; leaseMs: number } {
    if (isFinished(this.#lifecycle.phase)) throw new TrainfleetError(Code.FAILED_PRECONDITION, `the job has ended (${JobPhase[this.#lifecycle.phase]}); there is nothing to join`);
    const started = this.#plan !== undefined;
    if (started && request.role === MemberRole.WORKER && this.#spec!.parameterServers!.placement === Placement.COLOCATED) {
      throw new TrainfleetError(Code.FAILED_PRECONDITION, "the job runs with colocated placement, whose membership is fixed (each worker process holds a shard); use dedicated placement to add workers");
    }
    // A shard registering for an index whose member still holds its lease: that member's
    // session is dead (a shard registers again only when it lost its coordinator), and what
    // it held cannot be trusted: it is lost, and the job goes back to its checkpoint.
    const previous = started && request.role === MemberRole.PARAMETER_SERVER ? this.#members.shard(request.shardIndex) : undefined;
    if (previous !== undefined && previous.state !== WorkerState.LOST) this.#lose(previous, "replaced", `a shard registered again for its index ${request.shardIndex}`);
    if (isFinished(this.#lifecycle.phase)) throw new TrainfleetError(Code.FAILED_PRECONDITION, `the job has ended (${JobPhase[this.#lifecycle.phase]}); there is nothing to join`);
    const member = this.#members.add(request, this.#spec?.parameterServers?.shards);
    this.#options.logger.info({ memberId: member.id, memberRole: MemberRole[member.role], host: member.host, address: member.address || undefined }, "member registered");
    this.#lifecycle.publish({ kind: JobEventKind.MEMBER_JOINED, ...memberFields(member) });
    if (member.role === MemberRole.WORKER) this.#firstWorkerAt ??= this.#now();
    if (!started) {
      this.#lifecycle.setReason(this.#lifecycle.reason, this.#waitingMessage());
      this.#maybeStart();
    } else if (member.role === MemberRole.WORKER) {
      this.#membershipChanged(`worker ${member.id} joined`);
    } else {
      void this.#shardReturned(member);
    }
    return { memberId: member.id, jobId: this.#spec?.jobId ?? "", leaseMs: this.#options.leaseMs };
  }

  /** Renews a member's lease; a shard's counters, when sent, go into the status (until the job has finished). */
  heartbeat(memberId: string, shardStats?: ParameterServerStats): number {
    const expires = this.#members.renew(memberId);
    // A finished job's status is final: a heartbeat still in flight does not change it.
    if (shardStats !== undefined && !isFinished(this.#lifecycle.phase) && recordShardStats(this.#members.get(memberId), shardStats)) this.#lifecycle.changed();
    return expires;
  }

  assignments(memberId: string, signal: AbortSignal): AsyncIterable<AssignmentInit> {
    return this.#members.get(memberId).outbox.read(signal);
  }

  /** A member's assignment stream ended: before the job did, that member is lost. */
  streamClosed(memberId: string): void {
    const member = this.#members.get(memberId);
    if (!isFinished(this.#lifecycle.phase) && member.state !== WorkerState.STOPPED) this.#lose(member, "stream_closed", "its assignment stream closed");
  }

  /** Marks members whose lease ran out as lost, and fails a job paused past its deadline; call periodically. */
  checkLeases(): void {
    if (isFinished(this.#lifecycle.phase)) return;
    for (const member of this.#members.expired()) this.#lose(member, "lease_expired", `it missed its lease of ${this.#options.leaseMs} ms`);
    this.#opening?.resendIfSilent(this.#now(), this.#options.leaseMs);
    this.#checkStragglers();
    // A restarted coordinator may start with fewer than replicas workers, after a lease.
    if (this.#options.restartedAt !== undefined) this.#maybeStart();
    if (this.#lifecycle.phase === JobPhase.PAUSED && this.#now() > this.#pauseDeadline) {
      const { minWorkers, pauseTimeoutSeconds } = this.#spec!.workers!;
      const what = this.#lifecycle.reason === "ShardLost" ? "a lost parameter-server shard did not come back" : `fewer than ${minWorkers} workers (workers.minWorkers)`;
      this.fail("PauseTimeout", `${what} for ${pauseTimeoutSeconds} s (workers.pauseTimeoutSeconds): ${this.#lifecycle.message}`);
    }
  }

  /** A shard took a generation's assignment (and holds `version`), or could not take or open one. */
  reportGeneration(request: ReportGenerationRequest): void {
    const shard = this.#shardMember(request.memberId);
    if (request.error !== "") {
      this.fail("ShardFailed", `parameter-server shard ${shard.shardIndex} could not take generation ${request.generation}: ${request.error}`);
      return;
    }
    const opening = this.#opening;
    // A report for a generation already replaced by a newer one: that one is asked for anew.
    if (opening === undefined || request.generation !== opening.generation) return;
    const version = opening.report(shard.shardIndex, request.version);
    if (version === undefined) return;
    this.#opening = undefined;
    this.#open(opening, version);
  }

  reportProgress(request: ReportProgressRequest): void {
    const { member, plan } = this.#current(request.memberId, request.generation);
    member.lastStep = Math.max(member.lastStep, request.step);
    recordTiming(member.timing, request.computeMs, request.communicateMs);
    this.metrics.progressReported(plan.spec.jobId, member.id, request.computeMs, request.communicateMs);
    const advanced = plan.tracker.report({ rank: member.rank, step: request.step, loss: request.loss, samples: request.samples });
    if (advanced === 0) return;
    this.#options.logger.debug({ step: plan.tracker.completed, loss: plan.tracker.lastLoss }, "step complete");
    this.#dispatch.afterSteps(plan);
    this.#lifecycle.changed();
  }

  /**
   * A worker is exiting on an error no new assignment mends. Its reason goes into its
   * status, an event and a metric; it is lost at once (no waiting for its lease); and once
   * workers.replicas such reports have come with no step completed in between, the job
   * fails with reason WorkerFailed (worker-failures.ts). A worker that never registered
   * reports by host: it is counted, and named in the event and the job's message.
   */
  reportFailure(request: ReportFailureRequest): void {
    let failure = validateFailureReport(request);
    let member: Member | undefined;
    if (failure.workerId !== "") {
      member = this.#members.find(failure.workerId);
      if (member === undefined) throw new TrainfleetError(Code.NOT_FOUND, `worker_id: "${failure.workerId}" is not a worker of this job; a worker that is not registered reports by host, with worker_id empty`, { field: "worker_id" });
      if (member.role !== MemberRole.WORKER) throw invalidField("worker_id", `${member.id} is a parameter-server shard, not a worker`);
      if (failure.host === "") failure = { ...failure, host: member.host };
    }
    if (isFinished(this.#lifecycle.phase)) throw new TrainfleetError(Code.FAILED_PRECONDITION, `the job has ended (${JobPhase[this.#lifecycle.phase]}); its status is final`);
    this.#failures.record(failure);
    this.metrics.workerFailed(this.#spec?.jobId ?? "", failure.reason);
    const generation = failure.generation === 0 ? "" : ` in generation ${failure.generation}`;
    const what = `${failure.reason}${failure.message === "" ? "" : `: ${failure.message}`}`;
    this.#options.logger.warn({ memberId: failure.workerId || undefined, host: failure.host, reason: failure.reason, failures: this.#failures.count }, `${failedWorker(failure)} failed${generation}: ${what}`);
    const who = member === undefined ? { memberRole: MemberRole.WORKER, rank: -1 } : memberFields(member);
    this.#lifecycle.publish({ kind: JobEventKind.MEMBER_FAILED, ...who, message: `${failedWorker(failure)} failed${generation}: ${what}` });
    if (member !== undefined) member.lastError = { reason: failure.reason, message: failure.message };
    const verdict = this.#spec === undefined ? undefined : this.#failures.verdict(this.#spec.workers!.replicas);
    if (verdict !== undefined) {
      // The job ends here: the worker is lost, but no new generation is begun for it.
      if (member !== undefined) this.#lose(member, "failed", `it failed: ${what}`, false);
      return this.fail("WorkerFailed", verdict);
    }
    if (member !== undefined) this.#lose(member, "failed", `it failed: ${what}`);
    else this.#lifecycle.changed();
  }

  /** A shard wrote (or failed to write) its slice of a checkpoint. */
  reportCheckpoint(request: ReportCheckpointRequest): void {
    const shard = this.#shardMember(request.memberId);
    const checkpoints = this.#plan?.checkpoints;
    if (checkpoints === undefined) throw new TrainfleetError(Code.FAILED_PRECONDITION, "this job takes no checkpoints (the coordinator has no --checkpoint-dir)");
    checkpoints.report(shard.shardIndex, request);
    this.#lifecycle.changed();
  }

  /**
   * SIGTERM: hand out no more steps, let those handed out complete, have every shard write
   * its slice at that version (a just-in-time checkpoint, waited for at most
   * checkpointWaitMs), then stop the job with reason Terminated and a message naming the
   * checkpoint, or saying why there is none.
   */
  async terminate(): Promise<void> {
    const asked = "the coordinator was asked to stop (SIGTERM or SIGINT)";
    const plan = this.#plan;
    if (isFinished(this.#lifecycle.phase) || this.#dispatch.stopping) return;
    const checkpoints = plan?.checkpoints;
    if (plan === undefined || checkpoints === undefined) {
      return this.fail("Terminated", `${asked}; ${plan === undefined ? "training had not started, so there is nothing to checkpoint" : "no checkpoint was taken: the coordinator has no --checkpoint-dir"}`);
    }
    if (isAsync(plan.spec)) {
      return this.fail("Terminated", `${asked}; async mode takes no checkpoints (shard versions count gradients, not steps), so none was taken`);
    }
    if (this.#opening !== undefined || this.#lifecycle.phase === JobPhase.PAUSED) {
      const last = checkpoints.last === undefined ? "there is no earlier checkpoint" : `the newest is ${checkpoints.last.path} (step ${checkpoints.last.version})`;
      return this.fail("Terminated", `${asked} while the job was ${this.#opening === undefined ? "paused" : "changing generation"}, when the shards need not agree on a version: no checkpoint was taken; ${last}`);
    }
    const position = plan.samples.position();
    this.#dispatch.stopAt(position.step);
    this.#lifecycle.setReason("Checkpointing", `${asked}: finishing the steps handed out, then checkpointing step ${position.step}`);
    const ask = (version: number) => {
      for (const shard of this.#members.shards()) shard.outbox.push({ kind: { case: "checkpoint", value: { version } } });
    };
    const outcome = await checkpoints.takeOnStop(position, this.#options.checkpointWaitMs ?? 60_000, ask, this.#done);
    this.fail("Terminated", `${asked}; ${outcome}`);
  }

  reportEvaluation(request: ReportEvaluationRequest): void {
    const { member, plan } = this.#current(request.memberId, request.generation);
    if (this.#lifecycle.phase !== JobPhase.EVALUATING) return;
    const result = this.#dispatch.reportEvaluation(member.id, request);
    if (result === undefined) return;
    this.#testAccuracy = result.accuracy;
    this.#testLoss = result.loss;
    this.#options.logger.info({ testAccuracy: this.#testAccuracy, testLoss: this.#testLoss, samples: result.samples }, "evaluation complete");
    this.#lifecycle.publish({ kind: JobEventKind.EVALUATION_DONE, testAccuracy: this.#testAccuracy, testLoss: this.#testLoss });
    void this.#finishTraining(plan);
  }

  status(): JobStatus {
    return jobStatus({
      spec: this.#spec,
      phase: this.#lifecycle.phase,
      reason: this.#lifecycle.reason,
      message: this.#lifecycle.message,
      plan: this.#plan,
      workers: this.#members.workers(),
      shards: this.#members.shards(),
      testAccuracy: this.#testAccuracy,
      testLoss: this.#testLoss,
      startedAt: this.#startedAt,
      finishedAt: this.#finishedAt,
      lossHistory: this.#lossHistory.points(),
      pauseDeadline: this.#lifecycle.phase === JobPhase.PAUSED ? this.#pauseDeadline : 0,
      workerFailures: this.#failures.count,
    });
  }

  /** Resolves when the status has changed since `revision`, or on abort. */
  changedSince(revision: number, signal: AbortSignal): Promise<void> {
    return this.#lifecycle.changedSince(revision, signal);
  }

  /** Fails the job (for example on SIGTERM) and tells every member to stop. */
  fail(reason: string, message: string): void {
    if (isFinished(this.#lifecycle.phase)) return;
    this.#lifecycle.apply("fail", reason, message);
    this.#options.logger.error({ reason }, message);
    this.#finish();
  }

  #current(memberId: string, generation: number): { member: Member; plan: Plan } {
    const member = this.#members.get(memberId);
    const plan = this.#plan;
    if (plan === undefined) throw new TrainfleetError(Code.FAILED_PRECONDITION, "the job has not started");
    if (generation !== plan.generation || this.#opening !== undefined) {
      const now = this.#opening === undefined ? `at generation ${plan.generation}` : `opening generation ${this.#opening.generation}`;
      throw new TrainfleetError(Code.FAILED_PRECONDITION, `generation: the job is ${now}, the report is for ${generation}; its step is handed out again in the new generation`, { field: "generation" });
    }
    if (!plan.workers.includes(member)) throw new TrainfleetError(Code.FAILED_PRECONDITION, `member_id: ${memberId} has no rank in generation ${plan.generation}`, { field: "member_id" });
    return { member, plan };
  }

  #shardMember(memberId: string): Member {
    const member = this.#members.get(memberId);
    if (member.role !== MemberRole.PARAMETER_SERVER) throw new TrainfleetError(Code.FAILED_PRECONDITION, `member_id: ${member.id} is not a parameter-server shard`, { field: "member_id" });
    return member;
  }

  /** Evicts the stragglers (stragglers.ts; they may register again). Only while steps run: an idle shard counts every rank late. */
  #checkStragglers(): void {
    const plan = this.#plan;
    if (plan === undefined || this.#lifecycle.phase !== JobPhase.RUNNING || this.#opening !== undefined || this.#dispatch.stopping || plan.tracker.completed >= plan.totalSteps) return;
    if (isAsync(plan.spec)) return;
    const { stepDeadlineMs, maxMissedDeadlines } = plan.spec.workers!;
    const shardStats = this.#members.shards().map((shard) => shard.shardStats);
    for (const { worker, misses } of stragglers(shardStats, plan.generation, plan.workers, maxMissedDeadlines)) {
      this.#lose(worker, "straggler", `it missed ${misses} step deadlines of ${stepDeadlineMs} ms in a row (workers.stepDeadlineMs, workers.maxMissedDeadlines ${maxMissedDeadlines})`);
    }
  }

  #stepCompleted(jobId: string, step: CompletedStep): void {
    // Progress: worker failures count again from here (worker-failures.ts).
    this.#failures.progressed(step.completed);
    this.#options.ledgerAudit?.completed(step.completed - 1);
    // A step that a membership change settled before any rank reported it has no loss.
    if (!Number.isNaN(step.loss)) this.#lossHistory.add(step.completed, step.loss);
    this.metrics.stepCompleted(jobId, step.samples, step.at);
    const plan = this.#plan;
    if (this.#events === undefined || plan === undefined || Number.isNaN(step.loss)) return;
    const workers = plan.workers.map((w) => ({ memberId: w.id, rank: w.rank, computeMs: w.timing.computeMs, communicateMs: w.timing.communicateMs }));
    const epoch = Math.floor((step.completed - 1) / plan.stepsPerEpoch);
    this.#events.metrics({ jobId, generation: plan.generation, step: step.completed, epoch, loss: step.loss, samples: step.samples, samplesPerSecond: plan.tracker.samplesPerSecond(), workers }, step.at);
  }

  #waitingMessage(): string {
    if (this.#spec === undefined) return "waiting for a JobSpec (SubmitJob)";
    const shards = this.#members.shards().filter((shard) => shard.state !== WorkerState.LOST).length;
    const workers = this.#members.liveWorkers().length;
    return `waiting for members: ${shards}/${this.#spec.parameterServers!.shards} parameter-server shards, ${workers}/${this.#spec.workers!.replicas} workers registered`;
  }

  /** Workers needed to start: replicas; a restarted coordinator, whose workers may not all come back, min_workers once a lease has passed since the first. */
  #workersToStart(): number {
    const workers = this.#spec!.workers!;
    const waited = this.#firstWorkerAt !== undefined && this.#now() - this.#firstWorkerAt >= this.#options.leaseMs;
    return this.#options.restartedAt !== undefined && waited ? workers.minWorkers : workers.replicas;
  }

  /** Starts the job once its shards and workers.replicas workers are in. */
  #maybeStart(): void {
    const spec = this.#spec;
    if (spec === undefined || this.#plan !== undefined || isFinished(this.#lifecycle.phase)) return;
    // Shards that registered before the spec arrived may have indices the job does not have.
    const shards = this.#members.shards().filter((s) => s.shardIndex < spec.parameterServers!.shards && s.state !== WorkerState.LOST);
    const workers = this.#members.liveWorkers();
    if (shards.length < spec.parameterServers!.shards || workers.length < this.#workersToStart()) return;
    const { ranked } = chooseRanks([], workers, spec.workers!.maxWorkers);
    try {
      this.#plan = startJob({
        spec,
        shards,
        workers: ranked,
        checkpointDir: this.#options.checkpointDir,
        resume: this.#options.resume,
        logger: this.#options.logger,
        now: this.#now,
        onCheckpoint: (written) => this.#lifecycle.publish({ kind: JobEventKind.CHECKPOINT_WRITTEN, step: written.version, checkpointPath: written.path }),
      });
    } catch (error) {
      return this.fail("ResumeFailed", TrainfleetError.from(error).message);
    }
    const plan = this.#plan;
    this.#lifecycle.started(plan);
    plan.tracker.onStepComplete = (step) => this.#stepCompleted(spec.jobId, step);
    this.#startedAt = this.#now();
    const restarted = this.#options.restartedAt;
    if (restarted !== undefined) {
      // The shards hold whatever they had reached: every one goes back to the checkpoint (or the start).
      plan.generation = restarted.generation;
      plan.restores ??= shards.map(() => initialRestore);
      this.#options.ledgerAudit?.rewindTo(plan.startVersion);
    }
    this.#membershipChanged(restarted === undefined ? "the job starts" : `the coordinator restarted; the job goes on from step ${plan.startVersion}`);
  }

  /**
   * Workers joined or left: a new generation with the live workers (up to max_workers;
   * the others are standbys), or a pause when fewer than min_workers are left. A join
   * while evaluating leaves the evaluation alone: the worker waits as a standby.
   */
  #membershipChanged(why: string): void {
    const plan = this.#plan;
    // Once evaluated, the job only finishes: nothing a member does changes the result.
    if (plan === undefined || isFinished(this.#lifecycle.phase) || this.#testAccuracy !== undefined) return;
    // While a shard is missing nothing can run: the workers are counted when it is back.
    if (this.#missingShards().length > 0) return this.#lifecycle.changed();
    const { minWorkers, maxWorkers } = plan.spec.workers!;
    const live = this.#members.liveWorkers();
    const previous = this.#opening?.ranked ?? plan.workers;
    // The ranks of an open generation all alive: a worker that joined waits as a standby if
    // the job has max_workers, or is evaluating.
    const intact = plan.generation > 0 && this.#opening === undefined && this.#lifecycle.phase !== JobPhase.PAUSED && previous.every((worker) => live.includes(worker));
    const roster = chooseRanks(previous, live, intact && this.#lifecycle.phase === JobPhase.EVALUATING ? previous.length : maxWorkers);
    for (const member of roster.standby) {
      member.state = WorkerState.STANDBY;
      member.rank = -1;
    }
    if (intact && roster.ranked.length === previous.length) {
      this.#options.logger.info({ standbys: roster.standby.map((m) => m.id) }, `${why}: it waits as a standby (the job ${this.#lifecycle.phase === JobPhase.EVALUATING ? "is evaluating" : `has workers.maxWorkers = ${maxWorkers} workers`})`);
      return this.#lifecycle.changed();
    }
    if (roster.ranked.length < minWorkers) return this.#pause(why, roster.ranked.length);
    this.#beginGeneration(plan, roster.ranked, why);
  }

  /** Sends every shard the new generation's assignment; the generation opens once each has said which version it holds. */
  #beginGeneration(plan: Plan, ranked: Member[], why: string): void {
    const generation = ++plan.generation;
    const shards = this.#members.shards();
    const opening = new GenerationOpening(generation, ranked, why, shards.length);
    this.#opening = opening;
    this.metrics.generationChanged(plan.spec.jobId);
    this.#lifecycle.setReason(this.#lifecycle.phase === JobPhase.PENDING ? "Starting" : "Rescaling", `${why}: generation ${generation} of ${ranked.length} worker${ranked.length === 1 ? "" : "s"}; waiting for the shards' versions`);
    this.#options.logger.info({ generation, worldSize: ranked.length, why }, "generation begins");
    const { layout, shardRanges: ranges, spec } = plan;
    const checkpointDir = this.#options.checkpointDir ?? "";
    const restores = plan.restores;
    const send = () => {
      // Superseded by a newer generation (or the end) while the state was being saved.
      if (this.#opening !== opening) return;
      for (const shard of shards) {
        const restore = restores?.[shard.shardIndex];
        const value = { spec, generation, worldSize: ranked.length, range: ranges[shard.shardIndex]!, parameterCount: BigInt(layout.parameterCount), checkpointDir, ...(restore === undefined ? {} : { restore }) };
        opening.send(shard, { kind: { case: "shard", value } }, this.#now());
      }
    };
    const store = this.#options.stateStore;
    if (store === undefined) return send();
    // Saved before any shard hears of the generation, so that a restarted coordinator's generations are above every shard's.
    store.save(this.#savedState(false)).then(send, (error: unknown) => this.fail("StateNotSaved", `could not save the coordinator's state to ${store.description}: ${TrainfleetError.from(error).message}`));
  }

  /** What a restarted coordinator resumes from. */
  #savedState(finished: boolean): CoordinatorState {
    return { jobId: this.#spec!.jobId, spec: this.#spec!, checkpointDir: this.#options.checkpointDir ?? "", generation: this.#plan?.generation ?? 0, finished, updatedUnixMs: this.#now() };
  }

  /** Shard indices with no live member: their slices are gone until a shard registers again and the job goes back to a checkpoint. */
  #missingShards(): number[] {
    const live = new Set(this.#members.shards().filter((shard) => shard.state !== WorkerState.LOST).map((shard) => shard.shardIndex));
    return Array.from({ length: this.#spec!.parameterServers!.shards }, (_, index) => index).filter((index) => !live.has(index));
  }

  /** Paused until every lost shard has a successor, then back to the newest checkpoint (or the start, when there is none). */
  #pauseForShards(why: string): void {
    const plan = this.#plan!;
    this.#opening = undefined;
    if (this.#lifecycle.phase !== JobPhase.PAUSED) this.#pauseDeadline = this.#now() + plan.spec.workers!.pauseTimeoutSeconds * 1000;
    const missing = this.#missingShards();
    const last = plan.checkpoints?.last;
    const back = last === undefined ? "step 0 (there is no checkpoint yet)" : `its checkpoint of step ${last.version}`;
    const message = `${why}; waiting for parameter-server shard${missing.length === 1 ? "" : "s"} ${missing.join(", ")} to register again (trainfleet ps --shard-index N), then the job goes back to ${back}; it fails at ${new Date(this.#pauseDeadline).toISOString()}`;
    if (this.#lifecycle.phase === JobPhase.PAUSED) this.#lifecycle.setReason("ShardLost", message);
    else this.#lifecycle.apply("pause", "ShardLost", message);
    this.#options.logger.warn({ missing, deadline: new Date(this.#pauseDeadline).toISOString() }, message);
  }

  /** A shard process registered in a lost one's place: its addresses go to the plan, and once none is missing the job goes back to its checkpoint. */
  async #shardReturned(shard: Member): Promise<void> {
    const plan = this.#plan!;
    Object.assign(plan.shardRanges[shard.shardIndex]!, { address: shard.address, dataAddress: shard.dataAddress });
    const why = `parameter-server shard ${shard.shardIndex} registered again`;
    if (this.#missingShards().length > 0) return this.#pauseForShards(why);
    let back: GoBack;
    try {
      back = await goBackPoint(plan, this.#options.logger);
    } catch (error) {
      return this.fail("ResumeFailed", `${why}, but the job cannot go back to its checkpoint ${plan.checkpoints?.last?.path}: ${TrainfleetError.from(error).message}`);
    }
    // Things may have moved on while the checkpoint was read.
    if (isFinished(this.#lifecycle.phase) || this.#missingShards().length > 0) return;
    plan.tracker.rewind(back.version);
    plan.samples.seek(back.version);
    this.#options.ledgerAudit?.rewindTo(back.version);
    plan.restores = back.restores;
    this.#membershipChanged(`${why}; the job goes back to ${back.description}`);
  }

  /** Every shard has reported: generation `opening` goes on from `version`, with the ranks it was begun with. */
  #open(opening: GenerationOpening, version: number): void {
    const plan = this.#plan!;
    const { generation } = opening;
    for (const shard of this.#members.shards()) shard.outbox.push({ kind: { case: "openGeneration", value: { generation, version } } });
    // Async shards count a version per applied gradient, each on its own: the steps complete are the coordinator's count.
    if (isAsync(plan.spec)) version = plan.tracker.completed;
    const restored = plan.restores !== undefined;
    plan.restores = undefined;
    const starting = this.#lifecycle.phase === JobPhase.PENDING;
    plan.tracker.newGeneration(opening.ranked.length, version);
    plan.samples.seek(version);
    plan.checkpoints?.generationOpened(generation, version);
    plan.workers = [...opening.ranked];
    const { spec, layout, shardRanges: shards } = plan;
    plan.workers.forEach((worker, rank) => {
      worker.rank = rank;
      worker.state = WorkerState.TRAINING;
      worker.outbox.push({ kind: { case: "worker", value: { spec, generation, rank, worldSize: plan.workers.length, shards, parameterCount: BigInt(layout.parameterCount) } } });
    });
    const worldSize = plan.workers.length;
    const message = `training ${layout.parameterCount} parameters on ${worldSize} worker${worldSize === 1 ? "" : "s"} (generation ${generation}) and ${shards.length} shards for ${plan.totalSteps} steps`;
    if (this.#lifecycle.phase === JobPhase.PENDING) this.#lifecycle.apply("start", "Training", message);
    else if (this.#lifecycle.phase === JobPhase.PAUSED) this.#lifecycle.apply("resume", "Training", message);
    else this.#lifecycle.setReason(this.#lifecycle.phase === JobPhase.EVALUATING ? "Evaluating" : "Training", message);
    this.#pauseDeadline = 0;
    const fields = { jobId: spec.jobId, generation, worldSize, version, ranks: plan.workers.map((w) => w.id) };
    if (starting) {
      const resumed = this.#options.resume === undefined ? {} : { resumedFrom: this.#options.resume.path, step: version };
      this.#options.logger.info({ ...fields, shards: shards.length, totalSteps: plan.totalSteps, parameters: layout.parameterCount, ...resumed }, restored && version > 0 ? "job resumed from its checkpoint" : "job started");
    } else {
      this.#options.logger.info({ ...fields, why: opening.why, restored }, "generation opened");
      this.#lifecycle.publish({ kind: JobEventKind.GENERATION_CHANGED, message: `${opening.why}: generation ${generation} of ${worldSize} worker${worldSize === 1 ? "" : "s"} goes on from step ${version}` });
    }
    this.#dispatch.afterSteps(plan);
  }

  /** Below min_workers: no steps until enough workers are in, and a deadline after which the job fails. */
  #pause(why: string, workers: number): void {
    const plan = this.#plan!;
    this.#opening = undefined;
    if (this.#lifecycle.phase !== JobPhase.PAUSED) this.#pauseDeadline = this.#now() + plan.spec.workers!.pauseTimeoutSeconds * 1000;
    const { minWorkers } = plan.spec.workers!;
    const message = `${why}: ${workers} worker${workers === 1 ? "" : "s"}, fewer than workers.minWorkers (${minWorkers}); waiting for more until ${new Date(this.#pauseDeadline).toISOString()}, then the job fails`;
    if (this.#lifecycle.phase === JobPhase.PAUSED) this.#lifecycle.setReason("NotEnoughWorkers", message);
    else this.#lifecycle.apply("pause", "NotEnoughWorkers", message);
    this.#options.logger.warn({ workers, minWorkers, deadline: new Date(this.#pauseDeadline).toISOString() }, message);
  }

  async #finishTraining(plan: Plan): Promise<void> {
    if (this.#dispatch.stopping) return;
    try {
      await this.#options.onTrained?.({ spec: plan.spec, layout: plan.layout, version: plan.totalSteps, shards: plan.shardRanges });
    } catch (error) {
      this.fail("ExportFailed", `could not save the trained parameters: ${TrainfleetError.from(error).message}`);
      return;
    }
    // Periodic checkpoints still being written (the last step's, say) are finished first.
    await plan.checkpoints?.settle(this.#options.checkpointWaitMs ?? 60_000);
    await this.#shardCountersAt(plan.totalSteps, 2_000);
    const accuracy = ((this.#testAccuracy ?? 0) * 100).toFixed(2);
    this.#lifecycle.apply("evaluationDone", "Completed", `trained ${plan.totalSteps} steps; test accuracy ${accuracy}%`);
    this.#finish();
  }

  /**
   * Waits (at most `waitMs`) until every live shard's heartbeat counters are from version
   * `version` on, so that the final status counts the traffic of the last steps too. Shards
   * heartbeat at least once a second.
   */
  async #shardCountersAt(version: number, waitMs: number): Promise<void> {
    const signal = AbortSignal.timeout(waitMs);
    const behind = () => this.#members.shards().some((shard) => shard.state !== WorkerState.LOST && (shard.shardStats?.version ?? -1) < version);
    while (behind() && !signal.aborted) await this.#lifecycle.changedSince(this.#lifecycle.revision, signal);
  }

  /**
   * A member is gone (lease, stream, its own report of a failure). A worker leaves the job:
   * if it had a rank, a new generation goes on without it; if it is alive after all (a
   * partition), it is told to register again. A shard's slice lives in its memory: its loss
   * stops the job. `regroup` false: the member is marked lost and nothing more (the job is
   * about to fail).
   */
  #lose(member: Member, cause: EvictionCause, why: string, regroup = true): void {
    if (member.state === WorkerState.LOST) return;
    const hadRank = this.#plan?.workers.includes(member) === true || this.#opening?.ranked.includes(member) === true;
    member.state = WorkerState.LOST;
    const isWorker = member.role === MemberRole.WORKER;
    this.metrics.memberEvicted(this.#spec?.jobId ?? "", isWorker ? "worker" : "parameter_server", cause);
    const rank = hadRank ? ` (rank ${member.rank})` : "";
    const role = isWorker ? `worker ${member.id}${rank}` : `parameter-server shard ${member.shardIndex}`;
    const lost = `${role} was ${cause === "straggler" ? "evicted" : "lost"}: ${why}`;
    this.#lifecycle.publish({ kind: JobEventKind.MEMBER_LOST, ...memberFields(member), message: lost });
    member.outbox.push({ kind: { case: "stop", value: { reason: "Evicted", rejoin: true } } });
    member.outbox.close();
    if (!regroup) return this.#options.logger.warn({ memberId: member.id, cause }, lost);
    if (this.#spec?.parameterServers?.placement === Placement.COLOCATED && this.#plan !== undefined) {
      return this.fail("MemberLost", `${lost}. With colocated placement its process held a shard, so the job stops here rather than hang; resume it from its last checkpoint (trainfleet run --resume)`);
    }
    this.#options.logger.warn({ memberId: member.id, cause }, lost);
    if (this.#plan === undefined) return this.#lifecycle.setReason(this.#lifecycle.reason, this.#waitingMessage());
    if (!isWorker) return this.#pauseForShards(lost);
    if (hadRank) this.#membershipChanged(lost);
    else this.#lifecycle.changed();
  }

  #finish(): void {
    this.#finishedAt = this.#now();
    this.#opening = undefined;
    const tested = this.#testAccuracy === undefined ? {} : { testAccuracy: this.#testAccuracy, testLoss: this.#testLoss ?? 0 };
    this.#lifecycle.publish({ kind: JobEventKind.FINISHED, ...tested });
    for (const member of this.#members.all()) {
      if (member.state === WorkerState.LOST) continue;
      member.outbox.push({ kind: { case: "stop", value: { reason: this.#lifecycle.reason } } });
      member.outbox.close();
      member.state = WorkerState.STOPPED;
    }
    this.#lifecycle.changed();
    const status = this.status();
    // A coordinator restarted after the end must not run the job again.
    const store = this.#options.stateStore;
    const saved = store === undefined || this.#spec === undefined ? Promise.resolve() : store.save(this.#savedState(true));
    saved.catch((error: unknown) => this.#options.logger.error({ err: TrainfleetError.from(error).message }, `could not save the finished state to ${store!.description}`)).finally(() => this.#resolveDone(status));
  }
}
