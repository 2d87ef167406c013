/**
 * The coordinator of one job: membership, the plan (ranks, shard map, each step's data
 * slices), progress, evaluation and the end of the job. It holds the state; the gRPC
 * server (coordinator-server.ts) only translates calls into these methods.
 */
import { create } from "@bufbuild/protobuf";
import { Code, JobPhase, JobStatusSchema, MemberRole, TrainfleetError, WorkerState } from "@trainfleet/proto";
import type { JobSpec, JobStatus, Logger, ParameterLayout, RegisterRequest, ReportEvaluationRequest, ReportProgressRequest } from "@trainfleet/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ShardRangeSchema } from "@trainfleet/proto";
import { isFinished, transition } from "./job-phase.js";
import type { JobEvent } from "./job-phase.js";
import { ChangeNotifier } from "./change-notifier.js";
import { SampleCursor } from "./sample-cursor.js";
import { Members } from "./members.js";
import type { AssignmentInit, Member } from "./members.js";
import { planJob } from "./plan.js";
import type { JobPlan } from "./plan.js";
import { StepTracker } from "./step-tracker.js";

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
}

export interface TrainedJob {
  spec: JobSpec;
  layout: ParameterLayout;
  version: number;
  shards: Array<MessageInitShape<typeof ShardRangeSchema>>;
}

interface Plan extends JobPlan {
  spec: JobSpec;
  workers: Member[];
  tracker: StepTracker;
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
  readonly #changes = new ChangeNotifier();
  readonly #done: Promise<JobStatus>;
  #resolveDone!: (status: JobStatus) => void;

  constructor(options: CoordinatorOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#members = new Members(options.leaseMs, this.#now);
    this.#done = new Promise((resolve) => (this.#resolveDone = resolve));
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
    this.#spec = spec;
    this.#setReason("WaitingForMembers", this.#waitingMessage());
    this.#options.logger.info({ jobId: spec.jobId }, "job submitted");
    this.#maybeStart();
  }

  register(request: RegisterRequest): { memberId: string; jobId: string; leaseMs: number } {
    if (this.#phase !== JobPhase.PENDING) {
      throw new TrainfleetError(Code.FAILED_PRECONDITION, `the job is ${JobPhase[this.#phase]}; it took its members when it started (elastic joins are not supported yet)`);
    }
    const member = this.#members.add(request, this.#spec?.parameterServers?.shards);
    this.#options.logger.info({ memberId: member.id, memberRole: MemberRole[member.role], host: member.host, address: member.address || undefined }, "member registered");
    this.#setReason(this.#reason, this.#waitingMessage());
    this.#maybeStart();
    return { memberId: member.id, jobId: this.#spec?.jobId ?? "", leaseMs: this.#options.leaseMs };
  }

  heartbeat(memberId: string): number {
    return this.#members.renew(memberId);
  }

  assignments(memberId: string, signal: AbortSignal): AsyncIterable<AssignmentInit> {
    return this.#members.get(memberId).outbox.read(signal);
  }

  /** A member's assignment stream ended: before the job did, that member is lost. */
  streamClosed(memberId: string): void {
    const member = this.#members.get(memberId);
    if (!isFinished(this.#phase) && member.state !== WorkerState.STOPPED) this.#lose(member, "its assignment stream closed");
  }

  /** Fails the job if a member's lease ran out; call periodically. */
  checkLeases(): void {
    if (isFinished(this.#phase)) return;
    for (const member of this.#members.expired()) this.#lose(member, `it missed its lease of ${this.#options.leaseMs} ms`);
  }

  reportProgress(request: ReportProgressRequest): void {
    const { member, plan } = this.#current(request.memberId, request.generation);
    member.state = WorkerState.TRAINING;
    member.lastStep = Math.max(member.lastStep, request.step);
    const advanced = plan.tracker.report({ rank: member.rank, step: request.step, loss: request.loss, samples: request.samples });
    if (advanced === 0) return;
    this.#options.logger.debug({ step: plan.tracker.completed, loss: plan.tracker.lastLoss }, "step complete");
    if (plan.tracker.completed >= plan.totalSteps) this.#startEvaluation(plan);
    else this.#assignSteps(plan);
    this.#changedNow();
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
    void this.#finishTraining(plan);
  }

  status(): JobStatus {
    const plan = this.#plan;
    const tracker = plan?.tracker;
    const completed = tracker?.completed ?? 0;
    const perEpoch = plan?.stepsPerEpoch ?? 1;
    return create(JobStatusSchema, {
      jobId: this.#spec?.jobId ?? "",
      phase: this.#phase,
      reason: this.#reason,
      message: this.#message,
      generation: plan === undefined ? 0 : 1,
      epoch: Math.min(Math.floor(completed / perEpoch), (this.#spec?.training?.epochs ?? 1) - 1),
      epochs: this.#spec?.training?.epochs ?? 0,
      step: completed,
      totalSteps: plan?.totalSteps ?? 0,
      loss: tracker?.lastLoss ?? Number.NaN,
      samplesPerSecond: tracker?.samplesPerSecond() ?? 0,
      workers: this.#members.workers().map((w) => ({
        workerId: w.id,
        rank: Math.max(w.rank, 0),
        host: w.host,
        state: w.state,
        lastHeartbeatUnixMs: BigInt(w.lastHeartbeat),
        backend: w.backend,
        lastStep: w.lastStep,
      })),
      shards: plan?.shardRanges ?? [],
      ...(this.#testAccuracy === undefined ? {} : { testAccuracy: this.#testAccuracy }),
      ...(this.#testLoss === undefined ? {} : { testLoss: this.#testLoss }),
      startedUnixMs: BigInt(this.#startedAt),
      finishedUnixMs: BigInt(this.#finishedAt),
      parameterCount: BigInt(plan?.layout.parameterCount ?? 0),
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
    const samples = new SampleCursor(seed, jobPlan.input.trainSamples, batchSizePerWorker);
    const plan: Plan = { ...jobPlan, spec, workers, tracker: new StepTracker(workers.length, this.#now), samples };
    const { layout, shardRanges: ranges, worldSize, totalSteps } = plan;
    this.#plan = plan;
    this.#startedAt = this.#now();
    for (const shard of shards) {
      shard.outbox.push({ kind: { case: "shard", value: { spec, generation: 1, worldSize, range: ranges[shard.shardIndex]!, parameterCount: BigInt(layout.parameterCount) } } });
    }
    workers.forEach((worker, rank) => {
      worker.rank = rank;
      worker.state = WorkerState.TRAINING;
      worker.outbox.push({ kind: { case: "worker", value: { spec, generation: 1, rank, worldSize, shards: ranges, parameterCount: BigInt(layout.parameterCount) } } });
    });
    this.#apply("start", "Training", `training ${layout.parameterCount} parameters on ${worldSize} workers and ${shards.length} shards for ${totalSteps} steps`);
    this.#options.logger.info({ jobId: spec.jobId, generation: 1, worldSize, shards: shards.length, totalSteps, parameters: layout.parameterCount }, "job started");
    this.#assignSteps(plan);
  }

  /** Hands out steps up to `lookahead` beyond the last completed one, so workers never wait on us. */
  #assignSteps(plan: Plan): void {
    const limit = Math.min(plan.totalSteps, plan.tracker.completed + (this.#options.lookahead ?? 2));
    while (plan.samples.step < limit) {
      const { step, epoch, sampleIndices, globalBatchSize } = plan.samples.next(plan.workers.length);
      plan.workers.forEach((worker, rank) => {
        worker.outbox.push({ kind: { case: "step", value: { generation: 1, step, epoch, sampleIndices: Array.from(sampleIndices[rank]!), globalBatchSize } } });
      });
    }
  }

  #startEvaluation(plan: Plan): void {
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
    try {
      await this.#options.onTrained?.({ spec: plan.spec, layout: plan.layout, version: plan.totalSteps, shards: plan.shardRanges });
    } catch (error) {
      this.fail("ExportFailed", `could not save the trained parameters: ${TrainfleetError.from(error).message}`);
      return;
    }
    const accuracy = ((this.#testAccuracy ?? 0) * 100).toFixed(2);
    this.#apply("evaluationDone", "Completed", `trained ${plan.totalSteps} steps; test accuracy ${accuracy}%`);
    this.#finish();
  }

  #lose(member: Member, why: string): void {
    member.state = WorkerState.LOST;
    const rank = member.rank >= 0 ? ` (rank ${member.rank})` : "";
    const role = member.role === MemberRole.WORKER ? `worker ${member.id}${rank}` : `parameter-server shard ${member.shardIndex}`;
    this.fail("MemberLost", `${role} was lost: ${why}. Without elastic recovery the job stops here rather than hang; rerun it`);
  }

  #finish(): void {
    this.#finishedAt = this.#now();
    for (const member of this.#members.all()) {
      member.outbox.push({ kind: { case: "stop", value: { reason: this.#reason } } });
      member.outbox.close();
      if (member.state !== WorkerState.LOST) member.state = WorkerState.STOPPED;
    }
    this.#changedNow();
    this.#resolveDone(this.status());
  }

  #apply(event: JobEvent, reason: string, message: string): void {
    this.#phase = transition(this.#phase, event);
    this.#setReason(reason, message);
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
