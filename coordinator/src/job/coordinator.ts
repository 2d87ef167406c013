/**
 * The coordinator of one job, as the gRPC server (coordinator-server.ts) and the process
 * (run-coordinator.ts) see it: a facade whose methods hand each call to the part that
 * owns it. The job's phase, reason and events: JobLifecycle. When it starts: start-gate.ts
 * and job-start.ts. Its generations, pauses and a returned shard's rollback: generations/.
 * The loss of members, failure reports and stragglers: membership/. Steps and the
 * evaluation each rank is sent: StepDispatch. SIGTERM: job-termination.ts. The end: JobEnd.
 *
 * A restarted coordinator resumes from the state it saved (StateStore: the spec, the
 * checkpoint folder, the newest generation begun), which the generation cycle saves before
 * each generation's assignments go out, so generation numbers only rise.
 */

import type {
  JobStatus,
  ParameterServerStats,
  RegisterRequest,
  ReportCheckpointRequest,
  ReportEvaluationRequest,
  ReportFailureRequest,
  ReportGenerationRequest,
  ReportProgressRequest,
} from "@trainfleet/proto";
import { Code, isFinished, JobEventKind, JobPhase, MemberRole, TrainfleetError, WorkerState } from "@trainfleet/proto";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import { JobEventRecorder } from "../events/job-event-recorder.js";
import type { GenerationCycle } from "../generations/generation-cycle.js";
import { shardReturned } from "../generations/shard-rollback.js";
import { takeFailureReport } from "../membership/failure-reports.js";
import { loseMember } from "../membership/member-loss.js";
import { recordShardStats } from "../membership/member-status.js";
import type { AssignmentInit, Member } from "../membership/members.js";
import { Members } from "../membership/members.js";
import { admit } from "../membership/registration.js";
import { checkMemberId, checkRequestStrings } from "../membership/request-limits.js";
import { stragglerEvictions } from "../membership/stragglers.js";
import { WorkerFailures } from "../membership/worker-failures.js";
import type { EvictionCause } from "../status/coordinator-metrics.js";
import { CoordinatorMetrics } from "../status/coordinator-metrics.js";
import { DownsampledSeries } from "../status/downsampled-series.js";
import { jobStatus } from "../status/job-status.js";
import { takeProgressReport } from "../steps/progress-reports.js";
import { StepDispatch } from "../steps/step-dispatch.js";
import type { CoordinatorOptions } from "./coordinator-options.js";
import { JobEnd } from "./job-end.js";
import { launchJob } from "./job-launch.js";
import { JobLifecycle } from "./job-lifecycle.js";
import type { RunPlan } from "./job-start.js";
import { terminate } from "./job-termination.js";
import { waitingMessage } from "./start-gate.js";

export class Coordinator {
  /** Prometheus metrics, served at /metrics by the status server. */
  readonly metrics: CoordinatorMetrics;
  readonly #options: CoordinatorOptions;
  readonly #now: () => number;
  readonly #members: Members;
  readonly #events: JobEventRecorder | undefined;
  /** Phase, reason and message, the status revision, and the JobEvents that announce them. */
  readonly #lifecycle: JobLifecycle;
  /** The steps, and then the evaluation, each rank of the current generation is sent. */
  readonly #dispatch: StepDispatch;
  readonly #end: JobEnd;
  /** What the job's modules work with: the members, the lifecycle, the dispatch, the end, metrics, logger and clock. */
  readonly #parts;
  /** Fatal failures workers reported since the last completed step. */
  readonly #failures = new WorkerFailures();
  /** The training loss of every completed step, at most 200 points (see JobStatus.loss_history). */
  readonly #lossHistory = new DownsampledSeries(200);
  #spec: ResolvedJobSpec | undefined;
  /** The started job's generations (and its plan); none until it starts. */
  #cycle: GenerationCycle | undefined;
  #startedAt = 0;
  /** When the first worker registered (a restarted coordinator starts with min_workers after a lease). */
  #firstWorkerAt: number | undefined;

  constructor(options: CoordinatorOptions) {
    const { logger, onTrained, checkpointWaitMs, checkpointDir, stateStore } = options;
    const now = options.now ?? Date.now;
    this.#options = options;
    this.#now = now;
    this.#members = new Members(options.leaseMs, now);
    this.metrics = new CoordinatorMetrics(() => this.status(), now);
    this.#events = options.events === undefined ? undefined : new JobEventRecorder(options.events, logger, now);
    this.#lifecycle = new JobLifecycle(this.#events);
    this.#dispatch = new StepDispatch({ lookahead: options.lookahead, ledgerAudit: options.ledgerAudit, lifecycle: this.#lifecycle });
    const { metrics } = this;
    const common = { members: this.#members, lifecycle: this.#lifecycle, dispatch: this.#dispatch, metrics, logger, now };
    this.#end = new JobEnd({ ...common, onTrained, checkpointWaitMs, checkpointDir, stateStore, status: () => this.status() });
    this.#parts = { ...common, end: this.#end };
    if (options.spec !== undefined) this.submit(options.spec);
  }

  /** Resolves with the final status when the job has succeeded or failed. */
  done(): Promise<JobStatus> {
    return this.#end.done();
  }

  get revision(): number {
    return this.#lifecycle.revision;
  }

  get phase(): JobPhase {
    return this.#lifecycle.phase;
  }

  submit(spec: ResolvedJobSpec): void {
    if (this.#spec !== undefined)
      throw new TrainfleetError(
        Code.ALREADY_EXISTS,
        `this coordinator already runs job "${this.#spec.jobId}"; start another coordinator for another job`,
      );
    const every = spec.checkpoints?.everySteps ?? 0;
    if (every > 0 && this.#options.checkpointDir === undefined) {
      throw new TrainfleetError(
        Code.FAILED_PRECONDITION,
        `spec.checkpoints.everySteps: ${every}, but this coordinator has no checkpoint folder; start it with --checkpoint-dir`,
        { field: "spec.checkpoints.everySteps" },
      );
    }
    this.#spec = spec;
    this.#end.submitted(spec);
    this.#lifecycle.submitted(spec.jobId);
    this.metrics.jobSubmitted(spec.jobId);
    this.#lifecycle.setReason("WaitingForMembers", waitingMessage(spec, this.#members));
    this.#options.logger.info({ jobId: spec.jobId }, "job submitted");
    this.#lifecycle.publish({ kind: JobEventKind.SUBMITTED });
    this.#maybeStart();
  }

  /** A member joins (registration.ts; `identity` is the name its certificate gives it, "" in plaintext): before the start, the job may start; after it, a worker makes a new generation and a shard rolls the job back (shard-rollback.ts). */
  register(request: RegisterRequest, identity = ""): { memberId: string; jobId: string; leaseMs: number } {
    const member = admit(request, this.#lossContext(), identity);
    const cycle = this.#cycle;
    if (member.role === MemberRole.WORKER) this.#firstWorkerAt ??= this.#now();
    if (cycle === undefined) {
      this.#lifecycle.setReason(this.#lifecycle.reason, waitingMessage(this.#spec, this.#members));
      this.#maybeStart();
    } else if (member.role === MemberRole.WORKER) {
      cycle.regroup(`worker ${member.id} joined`);
    } else {
      void shardReturned(member, cycle, { ...this.#parts, ledgerAudit: this.#options.ledgerAudit });
    }
    return { memberId: member.id, jobId: this.#spec?.jobId ?? "", leaseMs: this.#options.leaseMs };
  }

  /** Renews a member's lease; a shard's counters, when sent, go into the status (until the job has finished). */
  heartbeat(memberId: string, shardStats?: ParameterServerStats): number {
    checkMemberId(memberId);
    const expires = this.#members.renew(memberId);
    // A finished job's status is final: a heartbeat still in flight does not change it.
    if (shardStats !== undefined && !isFinished(this.#lifecycle.phase) && recordShardStats(this.#members.get(memberId), shardStats))
      this.#lifecycle.changed();
    return expires;
  }

  assignments(memberId: string, signal: AbortSignal): AsyncIterable<AssignmentInit> {
    checkMemberId(memberId);
    return this.#members.get(memberId).outbox.read(signal);
  }

  /** A member's assignment stream ended: before the job did, that member is lost. */
  streamClosed(memberId: string): void {
    const member = this.#members.get(memberId);
    if (!isFinished(this.#lifecycle.phase) && member.state !== WorkerState.STOPPED)
      this.#lose(member, "stream_closed", "its assignment stream closed");
  }

  /** Adds `ms` to every lease: the coordinator was not running for that long, so no member could renew (run-coordinator.ts). */
  extendLeases(ms: number): void {
    this.#members.extendLeases(ms);
  }

  /** Marks members whose lease ran out as lost, evicts stragglers, and fails a job paused past its deadline; call periodically. */
  checkLeases(): void {
    if (isFinished(this.#lifecycle.phase)) return;
    for (const member of this.#members.expired()) this.#lose(member, "lease_expired", `it missed its lease of ${this.#options.leaseMs} ms`);
    this.#cycle?.resendIfSilent();
    const watch = { phase: this.#lifecycle.phase, changing: this.#cycle?.opening !== undefined, stopping: this.#dispatch.stopping };
    const shardStats = this.#members.shards().map((shard) => shard.shardStats);
    for (const { worker, why } of stragglerEvictions(watch, this.#cycle?.plan, shardStats)) this.#lose(worker, "straggler", why);
    // A restarted coordinator may start with fewer than replicas workers, after a lease.
    if (this.#options.restartedAt !== undefined) this.#maybeStart();
    this.#cycle?.checkPause();
  }

  /** A shard took a generation's assignment (and holds `version`), or could not take or open one. */
  reportGeneration(request: ReportGenerationRequest): void {
    checkRequestStrings(request);
    const shard = this.#shardMember(request.memberId);
    if (request.error !== "")
      return this.fail(
        "ShardFailed",
        `parameter-server shard ${shard.shardIndex} could not take generation ${request.generation}: ${request.error}`,
      );
    this.#cycle?.shardReported(shard.shardIndex, request.generation, request.version);
  }

  reportProgress(request: ReportProgressRequest): void {
    checkRequestStrings(request);
    const { member, plan } = this.#current(request.memberId, request.generation);
    takeProgressReport(member, plan, request, this.#parts);
  }

  /** A worker is exiting on an error no new assignment mends (failure-reports.ts). */
  reportFailure(request: ReportFailureRequest): void {
    checkRequestStrings(request);
    takeFailureReport(request, { ...this.#lossContext(), failures: this.#failures });
  }

  /** A shard wrote (or failed to write) its slice of a checkpoint. */
  reportCheckpoint(request: ReportCheckpointRequest): void {
    checkRequestStrings(request);
    const shard = this.#shardMember(request.memberId);
    const checkpoints = this.#cycle?.plan.checkpoints;
    if (checkpoints === undefined)
      throw new TrainfleetError(Code.FAILED_PRECONDITION, "this job takes no checkpoints (the coordinator has no --checkpoint-dir)");
    checkpoints.report(shard.shardIndex, request);
    this.#lifecycle.changed();
  }

  /** SIGTERM: the steps handed out complete, a just-in-time checkpoint, then the job stops with reason Terminated (job-termination.ts). */
  terminate(): Promise<void> {
    return terminate(this.#cycle, { ...this.#parts, checkpointWaitMs: this.#options.checkpointWaitMs });
  }

  reportEvaluation(request: ReportEvaluationRequest): void {
    checkRequestStrings(request);
    const { member, plan } = this.#current(request.memberId, request.generation);
    if (this.#lifecycle.phase !== JobPhase.EVALUATING) return;
    const result = this.#dispatch.reportEvaluation(member.id, request);
    if (result !== undefined) this.#end.evaluated(result, plan);
  }

  status(): JobStatus {
    const { phase, reason, message } = this.#lifecycle;
    const { evaluation, finishedAt } = this.#end;
    const members = { workers: this.#members.workers(), shards: this.#members.shards() };
    const tested = { testAccuracy: evaluation?.accuracy, testLoss: evaluation?.loss };
    const pauseDeadline = phase === JobPhase.PAUSED ? (this.#cycle?.pauseDeadline ?? 0) : 0;
    const progress = {
      startedAt: this.#startedAt,
      finishedAt,
      lossHistory: this.#lossHistory.points(),
      pauseDeadline,
      workerFailures: this.#failures.count,
    };
    return jobStatus({ spec: this.#spec, phase, reason, message, plan: this.#cycle?.plan, ...members, ...tested, ...progress });
  }

  /** Resolves when the status has changed since `revision`, or on abort. */
  changedSince(revision: number, signal: AbortSignal): Promise<void> {
    return this.#lifecycle.changedSince(revision, signal);
  }

  /** Fails the job (for example on SIGTERM) and tells every member to stop. */
  fail(reason: string, message: string): void {
    this.#end.fail(reason, message);
  }

  /** The reporting worker and the plan, for a report in the open generation (GenerationCycle.current). */
  #current(memberId: string, generation: number): { member: Member; plan: RunPlan } {
    const member = this.#members.get(memberId);
    if (this.#cycle === undefined) throw new TrainfleetError(Code.FAILED_PRECONDITION, "the job has not started");
    return { member, plan: this.#cycle.current(member, generation) };
  }

  #shardMember(memberId: string): Member {
    const member = this.#members.get(memberId);
    if (member.role !== MemberRole.PARAMETER_SERVER)
      throw new TrainfleetError(Code.FAILED_PRECONDITION, `member_id: ${member.id} is not a parameter-server shard`, {
        field: "member_id",
      });
    return member;
  }

  /** The job as the membership policies meet it (member-loss.ts). */
  #lossContext() {
    return { ...this.#parts, spec: this.#spec, cycle: this.#cycle };
  }

  #lose(member: Member, cause: EvictionCause, why: string): void {
    loseMember(member, cause, why, this.#lossContext());
  }

  /** Starts the job once its shards and enough workers are in (job-launch.ts), and begins its first generation. */
  #maybeStart(): void {
    const spec = this.#spec;
    if (spec === undefined || this.#cycle !== undefined || isFinished(this.#lifecycle.phase)) return;
    const { resume, restartedAt, ledgerAudit, leaseMs, checkpointDir, stateStore } = this.#options;
    const job = { spec, resume, restartedAt, ledgerAudit, leaseMs, checkpointDir, stateStore, firstWorkerAt: this.#firstWorkerAt };
    this.#cycle = launchJob({ ...this.#parts, ...job, failures: this.#failures, lossHistory: this.#lossHistory, events: this.#events });
    if (this.#cycle === undefined) return;
    this.#startedAt = this.#now();
    this.#cycle.regroup(
      restartedAt === undefined
        ? "the job starts"
        : `the coordinator restarted; the job goes on from step ${this.#cycle.plan.startVersion}`,
    );
  }
}
