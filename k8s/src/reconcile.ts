/**
 * One level-based reconcile of a TrainingJob: from what is observed now (the job, its pods and
 * Service, what its coordinator reports, the time) to what should be done (objects to create and
 * delete, the status it should have, the Events of its transitions, when to look again). A pure
 * function: the operator applies the plan, and whatever is missed is found again next time,
 * since nothing here depends on remembering an earlier pass.
 */
import type { KubernetesObject, V1Pod, V1Service } from "@kubernetes/client-node";
import { JobPhase, WorkerState } from "@trainfleet/proto";
import { Conditions, timestamp } from "./conditions.js";
import type { CoordinatorReport } from "./coordinator-status.js";
import { gangEnabled, gangPlan, gangState, gangTimeoutSeconds } from "./gang.js";
import type { PodGroupApi } from "./gang.js";
import { coordinatorName, labels, workerSelector } from "./names.js";
import { coordinatorEndpoint, coordinatorPod, coordinatorService, desiredWorkers, shardPod, workerPod } from "./pod-manifests.js";
import type { TrainingJob, TrainingJobStatus } from "./training-job.js";
import { runPolicyDefaults, shardCount, workerReplicas } from "./training-job.js";
import { checkTrainingJob } from "./training-job-check.js";
import type { JsonObject } from "./json.js";

export interface Observed {
  job: TrainingJob;
  /** The job's pods (this incarnation's), terminating ones included. */
  pods: readonly V1Pod[];
  service: V1Service | undefined;
  /** Whether the gang's PodGroup exists (asked only when the job has one). */
  podGroupExists: boolean;
  coordinator: CoordinatorReport | undefined;
  now: Date;
}

export interface ReconcileOptions {
  /** PodGroup APIs of gang schedulers installed in the cluster (--gang-pod-groups). */
  podGroupApis: readonly PodGroupApi[];
  /** How often a running job's coordinator is asked for its status. */
  statusPollMs: number;
  /** How long shards and workers may take to exit by themselves after the coordinator ended the job. */
  finishGraceMs: number;
}

export interface JobEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

export interface Plan {
  create: KubernetesObject[];
  /** Pods to delete, by name, with the uid that must still match (a precondition). */
  deletePods: { name: string; uid: string }[];
  /** The whole new status, or undefined when it is unchanged. */
  status: TrainingJobStatus | undefined;
  events: JobEvent[];
  /** ttlSecondsAfterFinished has passed: delete the TrainingJob (its objects go with it). */
  deleteJob: boolean;
  requeueAfterMs: number | undefined;
}

type PodRole = "coordinator" | "parameter-server" | "worker";

function roleOf(pod: V1Pod): PodRole | undefined {
  const role = pod.metadata?.labels?.[labels.role];
  return role === "coordinator" || role === "parameter-server" || role === "worker" ? role : undefined;
}

function indexOf(pod: V1Pod): number {
  return Number(pod.metadata?.labels?.[labels.index] ?? -1);
}

/**
 * "NAME exited 1 (Error): <the last line it logged>", from the container's terminated state; the
 * pods ask for their log's tail as termination message when they fail (FallbackToLogsOnError).
 */
function howItEnded(pod: V1Pod): string {
  const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
  const name = pod.metadata?.name ?? "a pod";
  if (terminated === undefined) return `${name} failed${pod.status?.reason === undefined ? "" : ` (${pod.status.reason})`}`;
  const lastLine = terminated.message?.trim().split("\n").at(-1)?.slice(0, 400);
  return `${name} exited ${terminated.exitCode}${terminated.reason === undefined ? "" : ` (${terminated.reason})`}${lastLine ? `: ${lastLine}` : ""}`;
}

const isTerminating = (pod: V1Pod) => pod.metadata?.deletionTimestamp !== undefined;
const isFinishedPod = (pod: V1Pod) => pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";

const trainingStates = new Set([WorkerState.TRAINING, WorkerState.EVALUATING]);

/** Outcomes the operator decides itself: nobody told the job's pods to stop. */
const operatorOutcomes = new Set(["DeadlineExceeded", "GangTimeout", "BackoffLimitExceeded", "InvalidSpec"]);

export function reconcile(observed: Observed, options: ReconcileOptions): Plan {
  return new Reconcile(observed, options).run();
}

class Reconcile {
  readonly plan: Plan = { create: [], deletePods: [], status: undefined, events: [], deleteJob: false, requeueAfterMs: undefined };
  readonly job: TrainingJob;
  readonly before: TrainingJobStatus;
  readonly status: TrainingJobStatus;
  readonly conditions: Conditions;
  readonly live: V1Pod[];
  readonly name: string;
  /** The job comes back from suspension in this pass: its workers return, which is no rescale. */
  resumed = false;

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

  run(): Plan {
    this.conditions.set("Created", "True", "TrainingJobCreated", `TrainingJob ${this.name} was accepted by the operator`);
    this.status.selector = workerSelector(this.name);
    this.status.coordinatorEndpoint = coordinatorEndpoint(this.job);
    this.status.replicas = this.live.filter((pod) => roleOf(pod) === "worker" && !isFinishedPod(pod)).length;
    if (this.job.metadata.deletionTimestamp === undefined) this.step();
    return this.finishPlan();
  }

  /** The job's lifecycle, first match wins. */
  step(): void {
    if (this.finished()) return this.afterFinish();
    this.readReport();
    if (this.finished()) return this.afterFinish();
    if (this.deadlinePassed() || this.refusedSpec()) return this.afterFinish();
    if (this.job.spec.runPolicy?.suspend === true) return this.suspend();
    if (this.conditions.isTrue("Suspended")) {
      this.conditions.set("Suspended", "False", "Resumed", "the job was resumed (runPolicy.suspend is false)");
      this.resumed = true;
    }
    this.restartFailedPods();
    if (this.finished()) return this.afterFinish();
    // Before anything is created: a gang past its deadline gets nothing new.
    if (!this.admit()) return this.afterFinish();
    this.createAndScale();
    this.updateRunning();
    this.pollAgainIn(this.options.statusPollMs);
  }

  finished(): boolean {
    return this.conditions.isTrue("Succeeded") || this.conditions.isTrue("Failed");
  }

  finish(outcome: "Succeeded" | "Failed", reason: string, message: string): void {
    this.conditions.set(outcome, "True", reason, message);
    for (const type of ["Running", "Rescaling", "Restarting"] as const) this.conditions.clear(type, outcome === "Succeeded" ? "JobSucceeded" : "JobFailed", `the job ${outcome === "Succeeded" ? "succeeded" : "failed"}: ${reason}`);
    this.status.completionTime ??= timestamp(this.observed.now);
  }

  /**
   * Clean-up by cleanPodPolicy, then deletion after ttlSecondsAfterFinished. When the
   * coordinator ended the job it also told its shards and workers to stop: they get
   * finishGraceMs to exit by themselves (and end Succeeded rather than killed). The coordinator
   * itself only serves its final status by then, and outcomes the operator decides stop nobody,
   * so those pods go at once.
   */
  afterFinish(): void {
    const policy = this.job.spec.runPolicy?.cleanPodPolicy ?? runPolicyDefaults.cleanPodPolicy;
    const outcome = this.conditions.get("Failed")?.status === "True" ? this.conditions.get("Failed") : this.conditions.get("Succeeded");
    const completedMs = Date.parse(this.status.completionTime ?? timestamp(this.observed.now));
    const graceEndsMs = operatorOutcomes.has(outcome?.reason ?? "") ? 0 : completedMs + this.options.finishGraceMs;
    const inGrace = this.observed.now.getTime() < graceEndsMs;
    for (const pod of this.live) {
      if (policy === "None" || (policy === "Running" && isFinishedPod(pod))) continue;
      if (inGrace && roleOf(pod) !== "coordinator" && !isFinishedPod(pod)) {
        this.pollAgainIn(graceEndsMs - this.observed.now.getTime());
        continue;
      }
      this.deletePod(pod);
    }
    const ttl = this.job.spec.runPolicy?.ttlSecondsAfterFinished;
    if (ttl === undefined) return;
    const expiresMs = completedMs + ttl * 1000;
    if (this.observed.now.getTime() >= expiresMs) this.plan.deleteJob = true;
    else this.pollAgainIn(expiresMs - this.observed.now.getTime());
  }

  /**
   * A new job that its coordinator would refuse fails at once, naming the field, instead of
   * starting a coordinator that exits until backoffLimit gives up. (The API server checks the
   * CRD's schema; rules only the coordinator knows, such as async mode's, are checked here.)
   */
  refusedSpec(): boolean {
    if (this.status.trainingReplicas !== undefined) return false;
    try {
      checkTrainingJob(this.job as unknown as JsonObject);
      return false;
    } catch (error) {
      this.finish("Failed", "InvalidSpec", `${error instanceof Error ? error.message : String(error)}; fix the TrainingJob and create it again`);
      return true;
    }
  }

  /** Progress and the outcome as the coordinator reports them; a coordinator that exited 0 succeeded. */
  readReport(): void {
    const report = this.observed.coordinator;
    if (report !== undefined && "status" in report) {
      const reported = report.status;
      this.status.epoch = reported.epoch;
      this.status.step = reported.step;
      if (Number.isFinite(reported.loss) && reported.loss >= 0) this.status.loss = reported.loss;
      if (reported.testAccuracy !== undefined) this.status.accuracy = reported.testAccuracy;
      this.status.samplesPerSecond = reported.samplesPerSecond;
      this.status.readyReplicas = reported.workers.filter((worker) => trainingStates.has(worker.state)).length;
      if (reported.lastCheckpointVersion !== undefined && reported.lastCheckpointUnixMs > 0n) {
        this.status.lastCheckpoint = { step: reported.lastCheckpointVersion, time: timestamp(new Date(Number(reported.lastCheckpointUnixMs))) };
      }
      if (reported.phase === JobPhase.SUCCEEDED) this.finish("Succeeded", reported.reason || "Completed", reported.message || "the coordinator reports the job succeeded");
      if (reported.phase === JobPhase.FAILED) this.finish("Failed", reported.reason || "CoordinatorFailed", reported.message || "the coordinator reports the job failed");
      return;
    }
    const coordinator = this.live.find((pod) => roleOf(pod) === "coordinator");
    if (coordinator?.status?.phase === "Succeeded") this.finish("Succeeded", "CoordinatorSucceeded", `pod ${coordinator.metadata?.name} exited 0: the job is done`);
  }

  deadlinePassed(): boolean {
    const seconds = this.job.spec.runPolicy?.activeDeadlineSeconds;
    if (seconds === undefined || this.status.startTime === undefined) return false;
    const deadlineMs = Date.parse(this.status.startTime) + seconds * 1000;
    if (this.observed.now.getTime() < deadlineMs) {
      this.pollAgainIn(deadlineMs - this.observed.now.getTime());
      return false;
    }
    this.finish("Failed", "DeadlineExceeded", `the job was active longer than runPolicy.activeDeadlineSeconds (${seconds} s)`);
    return true;
  }

  /** Suspended: no pods (the coordinator checkpoints on SIGTERM); resuming starts them again. */
  suspend(): void {
    for (const pod of this.live) this.deletePod(pod);
    const queue = this.job.spec.scheduling?.queueName;
    const [reason, message] =
      queue !== undefined
        ? ["WaitingForQueue", `runPolicy.suspend is true: waiting for Kueue to admit the job from queue ${queue}`]
        : ["Suspended", "runPolicy.suspend is true: the job's pods are deleted until it is false again"];
    this.conditions.set("Suspended", "True", reason, message);
    this.conditions.clear("Running", "Suspended", "the job is suspended");
    this.conditions.clear("Admitted", "Suspended", "the job is suspended");
    this.conditions.clear("Rescaling", "Suspended", "the job is suspended");
    // As for a Kubernetes Job: activeDeadlineSeconds counts from the last resume.
    delete this.status.startTime;
  }

  /**
   * Failed pods are deleted and made again. A coordinator or shard failure restarts the job
   * from its newest checkpoint and counts against backoffLimit; a lost worker does not count:
   * the job goes on without it.
   */
  restartFailedPods(): void {
    const failed = this.live.filter((pod) => pod.status?.phase === "Failed");
    const restarted = failed.filter((pod) => roleOf(pod) !== "worker");
    for (const pod of failed) {
      if (roleOf(pod) === "worker") this.plan.events.push({ type: "Warning", reason: "WorkerPodFailed", message: `${howItEnded(pod)}; it is made again (lost workers do not count against runPolicy.backoffLimit)` });
    }
    if (restarted.length === 0) {
      for (const pod of failed) this.deletePod(pod);
      if (this.conditions.isTrue("Restarting") && this.coordinatorTraining() && this.coreMembersRunning()) {
        this.conditions.set("Restarting", "False", "Recovered", "the coordinator and every shard run again, and the coordinator reports the job training");
      }
      return;
    }
    const restarts = (this.status.restarts ?? 0) + 1;
    const limit = this.job.spec.runPolicy?.backoffLimit ?? runPolicyDefaults.backoffLimit;
    const what = restarted.map(howItEnded).join("; ");
    if (restarts > limit) {
      // The failed pods stay, for their logs.
      this.finish("Failed", "BackoffLimitExceeded", `${what}; the job was already restarted ${restarts - 1} times, runPolicy.backoffLimit is ${limit}`);
      return;
    }
    for (const pod of failed) this.deletePod(pod);
    this.status.restarts = restarts;
    const role = restarted.some((pod) => roleOf(pod) === "coordinator") ? "CoordinatorFailed" : "ParameterServerFailed";
    this.conditions.set("Restarting", "True", role, `${what}; restart ${restarts} of at most ${limit}, from the newest checkpoint`);
  }

  /** The coordinator and every shard have a running pod. */
  coreMembersRunning(): boolean {
    const running = this.live.filter((pod) => roleOf(pod) !== "worker" && pod.status?.phase === "Running").length;
    return running === 1 + shardCount(this.job);
  }

  coordinatorTraining(): boolean {
    const report = this.observed.coordinator;
    return report !== undefined && "status" in report && report.status.phase === JobPhase.RUNNING;
  }

  /**
   * Creates what is missing and removes workers above the desired count, highest ranks first.
   * Running pods within the desired count are never touched: scaling restarts nothing.
   */
  createAndScale(): void {
    const gang = gangPlan(this.job, this.options.podGroupApis);
    const trainingReplicas = (this.status.trainingReplicas ??= workerReplicas(this.job));
    const taken = new Set(this.observed.pods.map((pod) => pod.metadata?.name));
    const wanted: V1Pod[] = [coordinatorPod(this.job, trainingReplicas, gang)];
    for (let index = 0; index < shardCount(this.job); index++) wanted.push(shardPod(this.job, index, gang));
    const workers = desiredWorkers(this.job, trainingReplicas);
    for (let rank = 0; rank < workers; rank++) wanted.push(workerPod(this.job, rank, gang));
    if (gang.podGroup !== undefined && !this.observed.podGroupExists) this.plan.create.push(gang.podGroup);
    if (this.observed.service === undefined) this.plan.create.push(coordinatorService(this.job));
    // A pod still terminating keeps its name: it is made again once it is gone.
    for (const pod of wanted) if (!taken.has(pod.metadata?.name)) this.plan.create.push(pod);
    for (const pod of this.live) if (roleOf(pod) === "worker" && indexOf(pod) >= workers) this.deletePod(pod);
    if (this.plan.create.some((object) => object.kind === "Pod")) this.status.startTime ??= timestamp(this.observed.now);
    // Worker ranks that have a pod, in any state, or get one now: the scale subresource's replicas.
    const ranks = new Set([...this.observed.pods, ...(this.plan.create as V1Pod[])].filter((pod) => roleOf(pod) === "worker").map(indexOf));
    this.status.replicas = ranks.size;
    this.updateRescaling(workers, ranks.size);
  }

  /**
   * Rescaling: from a change of the desired worker count (against the count the last pass left)
   * until the coordinator reports that many workers training. A failed worker being replaced
   * is no rescale: its rank keeps counting while it is made again.
   */
  updateRescaling(desired: number, existing: number): void {
    if (desired !== workerReplicas(this.job)) {
      this.conditions.set("Rescaling", "False", "NotElastic", `colocated placement runs a shard in each worker: the job keeps its ${desired} workers (spec.workers.replicas is ${workerReplicas(this.job)})`);
      return;
    }
    const before = this.resumed ? desired : (this.before.replicas ?? desired);
    const training = Math.min(desired, this.job.spec.workers?.maxWorkers ?? desired);
    const ready = this.status.readyReplicas;
    if (desired !== before) {
      this.conditions.set("Rescaling", "True", desired > before ? "ScalingUp" : "ScalingDown", `worker pods: ${before} -> ${desired}`);
    } else if (this.conditions.isTrue("Rescaling")) {
      if (existing === desired && this.coordinatorTraining() && ready === training) this.conditions.set("Rescaling", "False", "Rescaled", `${desired} workers training`);
      else if (existing === desired) this.conditions.set("Rescaling", "True", "WaitingForWorkers", `${ready ?? 0} of ${training} workers training`);
    }
  }

  /** Admitted: at once without gang admission, else when the whole minimum set is scheduled. Returns false when the gang timed out. */
  admit(): boolean {
    if (this.conditions.isTrue("Admitted")) return true;
    if (!gangEnabled(this.job)) {
      this.conditions.set("Admitted", "True", "Admitted", "gang admission is off: the job's pods are created at once");
      return true;
    }
    const state = gangState(this.job, this.observed.pods);
    if (state.admitted) {
      this.conditions.set("Admitted", "True", "GangScheduled", `all ${state.size} pods of the minimum set are scheduled`);
      return true;
    }
    const waiting = this.conditions.get("Admitted");
    const since = waiting?.status === "False" && waiting.reason === "WaitingForGang" ? Date.parse(waiting.lastTransitionTime) : this.observed.now.getTime();
    const deadlineMs = since + gangTimeoutSeconds(this.job) * 1000;
    const missing = `${state.size - state.missing.length} of ${state.size} pods of the minimum set are scheduled; not yet: ${state.missing.join(", ")}`;
    if (this.observed.now.getTime() >= deadlineMs) {
      this.finish("Failed", "GangTimeout", `${missing}; scheduling.gang.timeoutSeconds (${gangTimeoutSeconds(this.job)}) passed`);
      return false;
    }
    this.conditions.set("Admitted", "False", "WaitingForGang", `${missing}; the job fails at ${timestamp(new Date(deadlineMs))}`);
    this.pollAgainIn(deadlineMs - this.observed.now.getTime());
    return true;
  }

  updateRunning(): void {
    const report = this.observed.coordinator;
    if (report === undefined) {
      this.conditions.clear("Running", "CoordinatorStarting", `pod ${coordinatorName(this.name)} is not running yet`);
      return;
    }
    if ("unreachable" in report) {
      if (this.conditions.get("Running") !== undefined) this.conditions.set("Running", "Unknown", "CoordinatorUnreachable", report.unreachable);
      return;
    }
    const reported = report.status;
    switch (reported.phase) {
      case JobPhase.RUNNING:
        this.conditions.set("Running", "True", "Training", `epoch ${reported.epoch} of ${reported.epochs}, step ${reported.step} of ${reported.totalSteps}`);
        break;
      case JobPhase.EVALUATING:
        this.conditions.set("Running", "True", "Evaluating", "training is done; the workers evaluate the test set");
        break;
      case JobPhase.PAUSED:
        this.conditions.set("Running", "False", reported.reason || "Paused", reported.message);
        break;
      default:
        this.conditions.set("Running", "False", reported.reason || "WaitingForMembers", reported.message || "waiting for the shards and workers to register");
    }
  }

  deletePod(pod: V1Pod): void {
    const name = pod.metadata?.name;
    const uid = pod.metadata?.uid;
    if (name !== undefined && uid !== undefined && !this.plan.deletePods.some((entry) => entry.uid === uid)) this.plan.deletePods.push({ name, uid });
  }

  pollAgainIn(ms: number): void {
    const after = Math.max(0, Math.ceil(ms));
    this.plan.requeueAfterMs = this.plan.requeueAfterMs === undefined ? after : Math.min(this.plan.requeueAfterMs, after);
  }

  finishPlan(): Plan {
    this.status.conditions = this.conditions.list();
    const phase = this.conditions.phase();
    if (phase !== undefined) this.status.phase = phase;
    this.status.observedGeneration = this.job.metadata.generation ?? 0;
    if (!sameJson(this.status, this.before)) this.plan.status = this.status;
    for (const condition of this.conditions.transitions()) {
      const warning = condition.status !== "False" && (condition.type === "Failed" || condition.type === "Restarting" || condition.status === "Unknown");
      this.plan.events.push({ type: warning ? "Warning" : "Normal", reason: condition.reason, message: condition.message ?? "" });
    }
    return this.plan;
  }
}

/** Deep equality of JSON values, key order ignored. */
export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, entry]) => entry !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, entry]) => [key, sortKeys(entry)]),
  );
}
