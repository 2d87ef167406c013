/**
 * The coordinator of one job: membership, the plan (ranks, shard map, each step's data
 * slices), progress, evaluation and the end of the job. It holds the state; the gRPC
 * server (coordinator-server.ts) only translates calls into these methods.
 */
import { Code, JobEventKind, JobPhase, MemberRole, TrainfleetError, WorkerState } from "@trainfleet/proto";
import type { JobSpec, JobStatus, Logger, ParameterLayout, ParameterServerStats, RegisterRequest, ReportCheckpointRequest, ReportEvaluationRequest, ReportProgressRequest } from "@trainfleet/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ShardRangeSchema } from "@trainfleet/proto";
import { isFinished, transition } from "./job-phase.js";
import type { JobEvent } from "./job-phase.js";
import { ChangeNotifier } from "./change-notifier.js";
import { SampleCursor } from "./sample-cursor.js";
import { Members } from "./members.js";
import type { AssignmentInit, Member } from "./members.js";
import { planJob } from "./plan.js";
import { StepTracker } from "./step-tracker.js";
import type { CompletedStep } from "./step-tracker.js";
import { CoordinatorMetrics } from "./coordinator-metrics.js";
import type { EvictionCause } from "./coordinator-metrics.js";
import { DownsampledSeries } from "./downsampled-series.js";
import { recordShardStats, recordTiming } from "./member-status.js";
import { jobStatus } from "./job-status.js";
import type { StatusPlan } from "./job-status.js";
import { CheckpointTracker } from "./checkpoint-tracker.js";
import { writeCheckpoint } from "./checkpoint-store.js";
import type { LoadedCheckpoint } from "./checkpoint-store.js";
import { resumePoint } from "./resume-point.js";
import type { ResumePoint } from "./resume-point.js";
import type { EventBus } from "./events/event-bus.js";
import type { LedgerAudit } from "./ledger-audit.js";
import { JobEventRecorder } from "./events/job-event-recorder.js";
import type { JobEventInit } from "./events/job-event-recorder.js";

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
}

export interface TrainedJob {
  spec: JobSpec;
  layout: ParameterLayout;
  version: number;
  shards: Array<MessageInitShape<typeof ShardRangeSchema>>;
}

interface Plan extends StatusPlan {
  samples: SampleCursor;
}

export class Coordinator {
  readonly #options: CoordinatorOptions;
  readonly #now: () => number;
  readonly #members: Members;
  #spec: JobSpec | undefined;
  #phase: JobPhase = JobPhase.PENDING;
  #reason = "WaitingForJob";
  #message = "";
  #plan: Plan | undefined;
  #evaluation = { reported: new Set<string>(), samples: 0, correct: 0, lossSum: 0 };
  #testAccuracy: number | undefined;
  #testLoss: number | undefined;
  #startedAt = 0;
  #finishedAt = 0;
  /** Told to stop (terminate): no more steps are handed out. */
  #stopping = false;
  readonly #changes = new ChangeNotifier();
  /** The training loss of every completed step, at most 200 points (see JobStatus.loss_history). */
  readonly #lossHistory = new DownsampledSeries(200);
  /** Prometheus metrics, served at /metrics by the status server. */
  readonly metrics: CoordinatorMetrics;
  readonly #done: Promise<JobStatus>;
  #resolveDone!: (status: JobStatus) => void;
  readonly #events: JobEventRecorder | undefined;

  constructor(options: CoordinatorOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#members = new Members(options.leaseMs, this.#now);
    this.metrics = new CoordinatorMetrics(() => this.status(), this.#now);
    this.#done = new Promise((resolve) => (this.#resolveDone = resolve));
    this.#events = options.events === undefined ? undefined : new JobEventRecorder(options.events, options.logger, this.#now);
    if (options.spec !== undefined) this.submit(options.spec);
  }

  /** Resolves with the final status when the job has succeeded or failed. */
  done(): Promise<JobStatus> {
    return this.#done;
  }

  get revision(): number {
    return this.#changes.revision;
  }

  submit(spec: JobSpec): void {
    if (this.#spec !== undefined) throw new TrainfleetError(Code.ALREADY_EXISTS, `this coordinator already runs job "${this.#spec.jobId}"; start another coordinator for another job`);
    const every = spec.checkpoints?.everySteps ?? 0;
    if (every > 0 && this.#options.checkpointDir === undefined) {
      throw new TrainfleetError(Code.FAILED_PRECONDITION, `spec.checkpoints.everySteps: ${every}, but this coordinator has no checkpoint folder; start it with --checkpoint-dir`, { field: "spec.checkpoints.everySteps" });
    }
    this.#spec = spec;
    this.metrics.jobSubmitted(spec.jobId);
    this.#setReason("WaitingForMembers", this.#waitingMessage());
    this.#options.logger.info({ jobId: spec.jobId }, "job submitted");
    this.#publish({ kind: JobEventKind.SUBMITTED });
    this.#maybeStart();
  }

  register(request: RegisterRequest): { memberId: string; jobId: string; leaseMs: number } {
    if (this.#phase !== JobPhase.PENDING) {
      throw new TrainfleetError(Code.FAILED_PRECONDITION, `the job is ${JobPhase[this.#phase]}; it took its members when it started (elastic joins are not supported yet)`);
    }
    const member = this.#members.add(request, this.#spec?.parameterServers?.shards);
    this.#options.logger.info({ memberId: member.id, memberRole: MemberRole[member.role], host: member.host, address: member.address || undefined }, "member registered");
    this.#setReason(this.#reason, this.#waitingMessage());
    this.#publish({ kind: JobEventKind.MEMBER_JOINED, ...memberFields(member) });
    this.#maybeStart();
    return { memberId: member.id, jobId: this.#spec?.jobId ?? "", leaseMs: this.#options.leaseMs };
  }

  /** Renews a member's lease; a shard's counters, when sent, go into the status. */
  heartbeat(memberId: string, shardStats?: ParameterServerStats): number {
    const expires = this.#members.renew(memberId);
    if (shardStats !== undefined && recordShardStats(this.#members.get(memberId), shardStats)) this.#changedNow();
    return expires;
  }

  assignments(memberId: string, signal: AbortSignal): AsyncIterable<AssignmentInit> {
    return this.#members.get(memberId).outbox.read(signal);
  }

  /** A member's assignment stream ended: before the job did, that member is lost. */
  streamClosed(memberId: string): void {
    const member = this.#members.get(memberId);
    if (!isFinished(this.#phase) && member.state !== WorkerState.STOPPED) this.#lose(member, "stream_closed", "its assignment stream closed");
  }

  /** Fails the job if a member's lease ran out; call periodically. */
  checkLeases(): void {
    if (isFinished(this.#phase)) return;
    for (const member of this.#members.expired()) this.#lose(member, "lease_expired", `it missed its lease of ${this.#options.leaseMs} ms`);
  }

  reportProgress(request: ReportProgressRequest): void {
    const { member, plan } = this.#current(request.memberId, request.generation);
    member.state = WorkerState.TRAINING;
    member.lastStep = Math.max(member.lastStep, request.step);
    recordTiming(member.timing, request.computeMs, request.communicateMs);
    this.metrics.progressReported(plan.spec.jobId, member.id, request.computeMs, request.communicateMs);
    const advanced = plan.tracker.report({ rank: member.rank, step: request.step, loss: request.loss, samples: request.samples });
    if (advanced === 0) return;
    this.#options.logger.debug({ step: plan.tracker.completed, loss: plan.tracker.lastLoss }, "step complete");
    if (plan.tracker.completed >= plan.totalSteps) this.#startEvaluation(plan);
    else this.#assignSteps(plan);
    this.#changedNow();
  }

  /** A shard wrote (or failed to write) its slice of a checkpoint. */
  reportCheckpoint(request: ReportCheckpointRequest): void {
    const member = this.#members.get(request.memberId);
    if (member.role !== MemberRole.PARAMETER_SERVER) throw new TrainfleetError(Code.FAILED_PRECONDITION, `member_id: ${member.id} is not a parameter-server shard`, { field: "member_id" });
    const checkpoints = this.#plan?.checkpoints;
    if (checkpoints === undefined) throw new TrainfleetError(Code.FAILED_PRECONDITION, "this job takes no checkpoints (the coordinator has no --checkpoint-dir)");
    checkpoints.report(member.shardIndex, request);
    this.#changedNow();
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
    if (isFinished(this.#phase) || this.#stopping) return;
    this.#stopping = true;
    const checkpoints = plan?.checkpoints;
    if (plan === undefined || checkpoints === undefined) {
      return this.fail("Terminated", `${asked}; ${plan === undefined ? "training had not started, so there is nothing to checkpoint" : "no checkpoint was taken: the coordinator has no --checkpoint-dir"}`);
    }
    const position = plan.samples.position();
    this.#setReason("Checkpointing", `${asked}: finishing the steps handed out, then checkpointing step ${position.step}`);
    const ask = (version: number) => {
      for (const shard of this.#members.shards()) shard.outbox.push({ kind: { case: "checkpoint", value: { version } } });
    };
    const outcome = await checkpoints.takeOnStop(position, this.#options.checkpointWaitMs ?? 60_000, ask, this.#done);
    this.fail("Terminated", `${asked}; ${outcome}`);
  }

  reportEvaluation(request: ReportEvaluationRequest): void {
    const { member, plan } = this.#current(request.memberId, request.generation);
    if (this.#phase !== JobPhase.EVALUATING || this.#evaluation.reported.has(member.id)) return;
    this.#evaluation.reported.add(member.id);
    this.#evaluation.samples += request.samples;
    this.#evaluation.correct += request.correct;
    this.#evaluation.lossSum += request.lossSum;
    if (this.#evaluation.reported.size < plan.workers.length) return;
    const { samples, correct, lossSum } = this.#evaluation;
    this.#testAccuracy = samples > 0 ? correct / samples : 0;
    this.#testLoss = samples > 0 ? lossSum / samples : 0;
    this.#options.logger.info({ testAccuracy: this.#testAccuracy, testLoss: this.#testLoss, samples }, "evaluation complete");
    this.#publish({ kind: JobEventKind.EVALUATION_DONE, testAccuracy: this.#testAccuracy, testLoss: this.#testLoss });
    void this.#finishTraining(plan);
  }

  status(): JobStatus {
    return jobStatus({
      spec: this.#spec,
      phase: this.#phase,
      reason: this.#reason,
      message: this.#message,
      plan: this.#plan,
      workers: this.#members.workers(),
      shards: this.#members.shards(),
      testAccuracy: this.#testAccuracy,
      testLoss: this.#testLoss,
      startedAt: this.#startedAt,
      finishedAt: this.#finishedAt,
      lossHistory: this.#lossHistory.points(),
    });
  }

  /** Resolves when the status has changed since `revision`, or on abort. */
  changedSince(revision: number, signal: AbortSignal): Promise<void> {
    return this.#changes.after(revision, signal);
  }

  /** Fails the job (for example on SIGTERM) and tells every member to stop. */
  fail(reason: string, message: string): void {
    if (isFinished(this.#phase)) return;
    this.#apply("fail", reason, message);
    this.#options.logger.error({ reason }, message);
    this.#finish();
  }

  #current(memberId: string, generation: number): { member: Member; plan: Plan } {
    const member = this.#members.get(memberId);
    const plan = this.#plan;
    if (plan === undefined) throw new TrainfleetError(Code.FAILED_PRECONDITION, "the job has not started");
    if (generation !== 1) {
      throw new TrainfleetError(Code.FAILED_PRECONDITION, `generation: the job is at generation 1, the report is for ${generation}`, { field: "generation" });
    }
    if (member.rank < 0) throw new TrainfleetError(Code.FAILED_PRECONDITION, `member_id: ${memberId} has no rank in this generation`, { field: "member_id" });
    return { member, plan };
  }

  #stepCompleted(jobId: string, step: CompletedStep): void {
    this.#options.ledgerAudit?.completed(step.completed - 1);
    this.#lossHistory.add(step.completed, step.loss);
    this.metrics.stepCompleted(jobId, step.samples, step.at);
    const plan = this.#plan;
    if (this.#events === undefined || plan === undefined) return;
    const workers = plan.workers.map((w) => ({ memberId: w.id, rank: w.rank, computeMs: w.timing.computeMs, communicateMs: w.timing.communicateMs }));
    const epoch = Math.floor((step.completed - 1) / plan.stepsPerEpoch);
    this.#events.metrics({ jobId, generation: 1, step: step.completed, epoch, loss: step.loss, samples: step.samples, samplesPerSecond: plan.tracker.samplesPerSecond(), workers }, step.at);
  }

  #waitingMessage(): string {
    if (this.#spec === undefined) return "waiting for a JobSpec (SubmitJob)";
    const shards = this.#members.shards().length;
    const workers = this.#members.workers().length;
    return `waiting for members: ${shards}/${this.#spec.parameterServers!.shards} parameter-server shards, ${workers}/${this.#spec.workers!.replicas} workers registered`;
  }

  #maybeStart(): void {
    const spec = this.#spec;
    if (spec === undefined || this.#phase !== JobPhase.PENDING) return;
    // Shards that registered before the spec arrived may have indices the job does not have.
    const shards = this.#members.shards().filter((s) => s.shardIndex < spec.parameterServers!.shards);
    const workers = this.#members.workers();
    if (shards.length < spec.parameterServers!.shards || workers.length < spec.workers!.replicas) return;
    const { seed, batchSizePerWorker } = spec.training!;
    const jobPlan = planJob(spec, shards, workers.length);
    let resume: ResumePoint | undefined;
    try {
      const warn = (message: string) => this.#options.logger.warn({}, message);
      resume = this.#options.resume === undefined ? undefined : resumePoint(this.#options.resume, jobPlan, workers.map((worker) => worker.backend), warn);
    } catch (error) {
      return this.fail("ResumeFailed", TrainfleetError.from(error).message);
    }
    const start = resume?.version ?? 0;
    const samples = new SampleCursor(seed, jobPlan.input.trainSamples, batchSizePerWorker, resume?.position);
    const checkpointDir = this.#options.checkpointDir;
    const checkpoints =
      checkpointDir === undefined
        ? undefined
        : new CheckpointTracker({
            folder: checkpointDir,
            spec,
            worldSize: workers.length,
            backends: () => workers.map((worker) => worker.backend),
            ranges: jobPlan.shardRanges.map((range) => ({ begin: Number(range.begin), end: Number(range.end) })),
            startVersion: start,
            ...(resume === undefined ? {} : { last: { version: start, path: this.#options.resume!.path, createdUnixMs: resume.createdUnixMs } }),
            write: (manifest) => writeCheckpoint(checkpointDir, manifest),
            onWritten: (written) => this.#publish({ kind: JobEventKind.CHECKPOINT_WRITTEN, step: written.version, checkpointPath: written.path }),
            logger: this.#options.logger,
            now: this.#now,
          });
    const plan: Plan = { ...jobPlan, spec, workers, tracker: new StepTracker(workers.length, this.#now, start), samples, checkpoints };
    const { layout, shardRanges: ranges, worldSize, totalSteps } = plan;
    this.#plan = plan;
    plan.tracker.onStepComplete = (step) => this.#stepCompleted(spec.jobId, step);
    this.metrics.generationChanged(spec.jobId);
    this.#startedAt = this.#now();
    for (const shard of shards) {
      const restore = resume?.restores[shard.shardIndex];
      shard.outbox.push({
        kind: {
          case: "shard",
          value: { spec, generation: 1, worldSize, range: ranges[shard.shardIndex]!, parameterCount: BigInt(layout.parameterCount), checkpointDir: checkpointDir ?? "", ...(restore === undefined ? {} : { restore }) },
        },
      });
    }
    workers.forEach((worker, rank) => {
      worker.rank = rank;
      worker.state = WorkerState.TRAINING;
      worker.outbox.push({ kind: { case: "worker", value: { spec, generation: 1, rank, worldSize, shards: ranges, parameterCount: BigInt(layout.parameterCount) } } });
    });
    this.#apply("start", "Training", `training ${layout.parameterCount} parameters on ${worldSize} workers and ${shards.length} shards for ${totalSteps} steps`);
    const resumed = resume === undefined ? {} : { resumedFrom: this.#options.resume!.path, step: start };
    this.#options.logger.info({ jobId: spec.jobId, generation: 1, worldSize, shards: shards.length, totalSteps, parameters: layout.parameterCount, ...resumed }, resume === undefined ? "job started" : "job resumed from its checkpoint");
    if (start >= totalSteps) this.#startEvaluation(plan);
    else this.#assignSteps(plan);
  }

  /** Hands out steps up to `lookahead` beyond the last completed one, so workers never wait on us. */
  #assignSteps(plan: Plan): void {
    if (this.#stopping) return;
    const limit = Math.min(plan.totalSteps, plan.tracker.completed + (this.#options.lookahead ?? 2));
    while (plan.samples.step < limit) {
      const { step, epoch, sampleIndices, globalBatchSize } = plan.samples.next(plan.workers.length);
      this.#options.ledgerAudit?.handedOut({ step, epoch, generation: 1, sampleIndices });
      plan.workers.forEach((worker, rank) => {
        worker.outbox.push({ kind: { case: "step", value: { generation: 1, step, epoch, sampleIndices: Array.from(sampleIndices[rank]!), globalBatchSize } } });
      });
      // Where the ledger stands after this step, in case a checkpoint is due at the version it makes.
      plan.checkpoints?.cursorAt(plan.samples.position());
    }
  }

  #startEvaluation(plan: Plan): void {
    if (this.#stopping) return;
    this.#apply("trainingDone", "Evaluating", `evaluating version ${plan.totalSteps} on the test set`);
    const total = Math.min(plan.spec.training!.evalSamples || plan.input.testSamples, plan.input.testSamples);
    plan.workers.forEach((worker, rank) => {
      worker.state = WorkerState.EVALUATING;
      const begin = Math.floor((total * rank) / plan.workers.length);
      const end = Math.floor((total * (rank + 1)) / plan.workers.length);
      worker.outbox.push({ kind: { case: "evaluate", value: { generation: 1, version: plan.totalSteps, begin, end } } });
    });
  }

  async #finishTraining(plan: Plan): Promise<void> {
    if (this.#stopping) return;
    try {
      await this.#options.onTrained?.({ spec: plan.spec, layout: plan.layout, version: plan.totalSteps, shards: plan.shardRanges });
    } catch (error) {
      this.fail("ExportFailed", `could not save the trained parameters: ${TrainfleetError.from(error).message}`);
      return;
    }
    // Periodic checkpoints still being written (the last step's, say) are finished first.
    await plan.checkpoints?.settle(this.#options.checkpointWaitMs ?? 60_000);
    const accuracy = ((this.#testAccuracy ?? 0) * 100).toFixed(2);
    this.#apply("evaluationDone", "Completed", `trained ${plan.totalSteps} steps; test accuracy ${accuracy}%`);
    this.#finish();
  }

  #lose(member: Member, cause: EvictionCause, why: string): void {
    member.state = WorkerState.LOST;
    this.metrics.memberEvicted(this.#spec?.jobId ?? "", member.role === MemberRole.WORKER ? "worker" : "parameter_server", cause);
    const rank = member.rank >= 0 ? ` (rank ${member.rank})` : "";
    const role = member.role === MemberRole.WORKER ? `worker ${member.id}${rank}` : `parameter-server shard ${member.shardIndex}`;
    this.#publish({ kind: JobEventKind.MEMBER_LOST, ...memberFields(member), message: `${role} was lost: ${why}` });
    this.fail("MemberLost", `${role} was lost: ${why}. Without elastic recovery the job stops here rather than hang; rerun it`);
  }

  #finish(): void {
    this.#finishedAt = this.#now();
    const tested = this.#testAccuracy === undefined ? {} : { testAccuracy: this.#testAccuracy, testLoss: this.#testLoss ?? 0 };
    this.#publish({ kind: JobEventKind.FINISHED, ...tested });
    for (const member of this.#members.all()) {
      member.outbox.push({ kind: { case: "stop", value: { reason: this.#reason } } });
      member.outbox.close();
      if (member.state !== WorkerState.LOST) member.state = WorkerState.STOPPED;
    }
    this.#changedNow();
    this.#resolveDone(this.status());
  }

  #apply(event: JobEvent, reason: string, message: string): void {
    const from = this.#phase;
    this.#phase = transition(this.#phase, event);
    this.#setReason(reason, message);
    // The end is published by #finish (FINISHED), once the job has fully ended.
    if (from === JobPhase.PENDING && this.#phase === JobPhase.RUNNING) this.#publish({ kind: JobEventKind.STARTED });
    else if (from !== this.#phase && !isFinished(this.#phase)) this.#publish({ kind: JobEventKind.PHASE_CHANGED });
  }

  /** A JobEvent with the job's phase, reason, message, generation and step as they are now. */
  #publish(init: JobEventInit): void {
    if (this.#events === undefined || this.#spec === undefined) return;
    const plan = this.#plan;
    this.#events.event({
      jobId: this.#spec.jobId,
      phase: this.#phase,
      reason: this.#reason,
      message: this.#message,
      generation: plan === undefined ? 0 : 1,
      step: plan?.tracker.completed ?? 0,
      ...init,
    });
  }

  #setReason(reason: string, message: string): void {
    this.#reason = reason;
    this.#message = message;
    this.#changedNow();
  }

  #changedNow(): void {
    this.#changes.changed();
  }
}

/** Which member an event is about. */
function memberFields(member: Member): JobEventInit {
  return { memberId: member.id, memberRole: member.role, rank: member.rank, shardIndex: Math.max(0, member.shardIndex) };
}
