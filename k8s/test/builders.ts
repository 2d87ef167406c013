/**
 * Builders for table tests of reconcile(), after kubeflow/trainer's wrappers
 * (`MakeTrainJobWrapper(ns, name).Suspend(true).Obj()`): a TrainingJob with the status an earlier
 * pass left on it, its pods in any state, what its coordinator reports, and the clock, each built
 * in one readable chain that ends in `.obj()`. Times are seconds after t0, a fixed instant.
 * Names, labels and status strings are spelled out here rather than taken from src/, so that a
 * test fails when src/ changes them.
 */
import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type { V1Pod, V1Service, V1Toleration } from "@kubernetes/client-node";
import type { JobPhase, JobStatus } from "@trainfleet/proto";
import { JobStatusSchema, WorkerState, WorkerStatusSchema } from "@trainfleet/proto";
import type { CoordinatorReport } from "../src/coordinator-status.js";
import type { KueueCondition, ResourceFlavor, Workload } from "../src/kueue-workload.js";
import type { Observed, ReconcileOptions } from "../src/reconcile-plan.js";
import type { Condition, ConditionType, TrainingJob, TrainingJobSpec, TrainingJobStatus } from "../src/training-job.js";

/** The instant every test's clock counts from. */
export const t0 = new Date("2025-06-01T12:00:00Z");

/** t0 plus `seconds`. */
export function at(seconds: number): Date {
  return new Date(t0.getTime() + seconds * 1000);
}

/** t0 plus `seconds`, as a Kubernetes timestamp (RFC 3339 in seconds). */
export function stamp(seconds: number): string {
  return at(seconds)
    .toISOString()
    .replace(/\.\d{3}Z$/, "Z");
}

type RunPolicy = NonNullable<TrainingJobSpec["runPolicy"]>;
type Role = "coordinator" | "parameter-server" | "worker";

/** Which job a pod belongs to: a TrainingJobWrapper, or just its namespace and name. */
export interface JobRef {
  readonly namespace: string;
  readonly name: string;
}

export class TrainingJobWrapper {
  readonly #job: TrainingJob;

  constructor(namespace: string, name: string) {
    this.#job = {
      apiVersion: "trainfleet.dev/v1alpha1",
      kind: "TrainingJob",
      metadata: { name, namespace, uid: `uid-${name}`, generation: 1 },
      spec: { image: "trainfleet:test", workers: { replicas: 2 }, parameterServers: { replicas: 1 } },
    };
  }

  get name(): string {
    return this.#job.metadata.name;
  }

  get namespace(): string {
    return this.#job.metadata.namespace;
  }

  /** spec.workers.replicas */
  replicas(replicas: number): this {
    this.#job.spec.workers = { ...this.#job.spec.workers, replicas };
    return this;
  }

  minWorkers(minWorkers: number): this {
    this.#job.spec.workers = { ...this.#job.spec.workers, minWorkers };
    return this;
  }

  maxWorkers(maxWorkers: number): this {
    this.#job.spec.workers = { ...this.#job.spec.workers, maxWorkers };
    return this;
  }

  /** spec.parameterServers.replicas: the number of shard pods. */
  shards(replicas: number): this {
    this.#job.spec.parameterServers = { ...this.#job.spec.parameterServers, replicas };
    return this;
  }

  /** Each worker runs a shard: no shard pods, and a fixed number of workers. */
  colocated(): this {
    this.#job.spec.parameterServers = { placement: "colocated" };
    return this;
  }

  suspend(suspend: boolean): this {
    return this.#runPolicy({ suspend });
  }

  backoffLimit(backoffLimit: number): this {
    return this.#runPolicy({ backoffLimit });
  }

  activeDeadlineSeconds(activeDeadlineSeconds: number): this {
    return this.#runPolicy({ activeDeadlineSeconds });
  }

  ttlSecondsAfterFinished(ttlSecondsAfterFinished: number): this {
    return this.#runPolicy({ ttlSecondsAfterFinished });
  }

  cleanPodPolicy(cleanPodPolicy: NonNullable<RunPolicy["cleanPodPolicy"]>): this {
    return this.#runPolicy({ cleanPodPolicy });
  }

  /** Gang admission by the operator itself, or by the scheduler named with `schedulerName`. */
  gang(timeoutSeconds?: number): this {
    const gang = timeoutSeconds === undefined ? { enabled: true } : { enabled: true, timeoutSeconds };
    this.#job.spec.scheduling = { ...this.#job.spec.scheduling, gang };
    return this;
  }

  schedulerName(schedulerName: string): this {
    this.#job.spec.scheduling = { ...this.#job.spec.scheduling, schedulerName };
    return this;
  }

  /** scheduling.queueName: Kueue's LocalQueue. */
  queue(queueName: string): this {
    this.#job.spec.scheduling = { ...this.#job.spec.scheduling, queueName };
    return this;
  }

  /** spec.output: the coordinator writes the trained model to a folder of this claim (`path`, else NAME-UID). */
  output(claimName: string, path?: string): this {
    this.#job.spec.output = { persistentVolumeClaim: { claimName }, ...(path === undefined ? {} : { path }) };
    return this;
  }

  /** Any other spec fields, merged at the top level of spec. */
  spec(fields: Partial<TrainingJobSpec>): this {
    Object.assign(this.#job.spec, fields);
    return this;
  }

  /** The job is being deleted. */
  deleting(): this {
    this.#job.metadata.deletionTimestamp = stamp(0);
    return this;
  }

  /** Status fields, merged over what the status has. */
  status(fields: Partial<TrainingJobStatus>): this {
    this.#job.status = { ...this.#job.status, ...fields };
    return this;
  }

  /** A condition as an earlier pass set it, `sinceSeconds` after t0. */
  condition(type: ConditionType, status: Condition["status"], reason: string, sinceSeconds = 0): this {
    const conditions = (this.#job.status?.conditions ?? []).filter((condition) => condition.type !== type);
    conditions.push({
      type,
      status,
      reason,
      message: `${reason} (an earlier pass)`,
      lastTransitionTime: stamp(sinceSeconds),
      observedGeneration: 1,
    });
    return this.status({ conditions });
  }

  /**
   * The status a pass leaves on a job whose coordinator trains, started at t0 with the workers it
   * has now: Created, Admitted, Running True Training; startTime; replicas and trainingReplicas.
   */
  running(): this {
    const replicas = this.#job.spec.workers?.replicas ?? 2;
    return this.condition("Created", "True", "TrainingJobCreated")
      .condition("Admitted", "True", "Admitted")
      .condition("Running", "True", "Training")
      .status({ startTime: stamp(0), replicas, trainingReplicas: replicas });
  }

  /** The status of a job that finished at `atSeconds`: the outcome True, Running cleared, completionTime. */
  finished(outcome: "Succeeded" | "Failed", reason: string, atSeconds = 0): this {
    return this.running()
      .condition(outcome, "True", reason, atSeconds)
      .condition("Running", "False", outcome === "Succeeded" ? "JobSucceeded" : "JobFailed", atSeconds)
      .status({ completionTime: stamp(atSeconds) });
  }

  obj(): TrainingJob {
    return structuredClone(this.#job);
  }

  #runPolicy(fields: Partial<RunPolicy>): this {
    this.#job.spec.runPolicy = { ...this.#job.spec.runPolicy, ...fields };
    return this;
  }
}

export function trainingJob(namespace: string, name: string): TrainingJobWrapper {
  return new TrainingJobWrapper(namespace, name);
}

export class PodWrapper {
  readonly #pod: V1Pod;

  constructor(job: JobRef, role: Role, index?: number) {
    const name =
      role === "coordinator"
        ? `${job.name}-coordinator`
        : role === "parameter-server"
          ? `${job.name}-ps-${index ?? 0}`
          : `${job.name}-worker-${index ?? 0}`;
    const labels: Record<string, string> = {
      "app.kubernetes.io/managed-by": "trainfleet-operator",
      "trainfleet.dev/job-name": job.name,
      "trainfleet.dev/role": role,
    };
    if (role !== "coordinator") labels["trainfleet.dev/index"] = String(index ?? 0);
    this.#pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: job.namespace, uid: `uid-${name}`, labels },
      status: { phase: "Running" },
    };
  }

  get name(): string {
    return this.#pod.metadata!.name!;
  }

  /** Pending, Running (the default), Succeeded or Failed. */
  phase(phase: "Pending" | "Running" | "Succeeded" | "Failed"): this {
    this.#pod.status = { ...this.#pod.status, phase };
    return this;
  }

  /** The container terminated with `code` (Completed for 0, else Error), its log's last lines as the termination message. */
  exitCode(code: number, log?: string): this {
    const terminated = { exitCode: code, reason: code === 0 ? "Completed" : "Error", ...(log === undefined ? {} : { message: log }) };
    this.#pod.status = {
      ...this.#pod.status,
      phase: code === 0 ? "Succeeded" : "Failed",
      containerStatuses: [
        { name: "trainfleet", image: "trainfleet:test", imageID: "", ready: false, restartCount: 0, state: { terminated } },
      ],
    };
    return this;
  }

  /** Pending and bound to a node. */
  scheduled(): this {
    this.#pod.status = { phase: "Pending", conditions: [{ type: "PodScheduled", status: "True" }] };
    return this;
  }

  /** Pending: the scheduler found no node, and said why. */
  unschedulable(message: string): this {
    this.#pod.status = { phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message }] };
    return this;
  }

  /** Being deleted (it keeps its name until it is gone). */
  terminating(): this {
    this.#pod.metadata!.deletionTimestamp = at(0);
    return this;
  }

  obj(): V1Pod {
    return structuredClone(this.#pod);
  }
}

/** A pod of the job's, Running unless told otherwise. `index` is the shard index or worker rank. */
export function pod(job: JobRef, role: Role, index?: number): PodWrapper {
  return new PodWrapper(job, role, index);
}

/** The coordinator, `shards` shards and `workers` workers of the job, all Running. */
export function runningPods(job: JobRef, shards: number, workers: number): PodWrapper[] {
  return [
    pod(job, "coordinator"),
    ...Array.from({ length: shards }, (_, index) => pod(job, "parameter-server", index)),
    ...Array.from({ length: workers }, (_, rank) => pod(job, "worker", rank)),
  ];
}

export class CoordinatorStatusWrapper {
  readonly #status: JobStatus;

  constructor(phase: JobPhase) {
    this.#status = create(JobStatusSchema, { phase, epoch: 1, epochs: 3, step: 70, totalSteps: 300, loss: 0.42, samplesPerSecond: 1234 });
  }

  progress(epoch: number, epochs: number, step: number, totalSteps: number): this {
    Object.assign(this.#status, { epoch, epochs, step, totalSteps });
    return this;
  }

  loss(loss: number): this {
    this.#status.loss = loss;
    return this;
  }

  testAccuracy(accuracy: number): this {
    this.#status.testAccuracy = accuracy;
    return this;
  }

  /** One worker per state given, rank by rank. */
  workers(...states: WorkerState[]): this {
    this.#status.workers = states.map((state, rank) => create(WorkerStatusSchema, { workerId: `w${rank}`, rank, state }));
    return this;
  }

  /** `count` workers, all training. */
  training(count: number): this {
    return this.workers(...Array.from({ length: count }, () => WorkerState.TRAINING));
  }

  checkpoint(version: number, atSeconds: number): this {
    this.#status.lastCheckpointVersion = version;
    this.#status.lastCheckpointUnixMs = BigInt(at(atSeconds).getTime());
    return this;
  }

  /** When the job ended, `atSeconds` after t0. */
  finishedAt(atSeconds: number): this {
    this.#status.finishedUnixMs = BigInt(at(atSeconds).getTime());
    return this;
  }

  /** The coordinator's reason and message for its phase. */
  because(reason: string, message: string): this {
    this.#status.reason = reason;
    this.#status.message = message;
    return this;
  }

  obj(): CoordinatorReport {
    return { status: structuredClone(this.#status) };
  }
}

/** What the coordinator's status API answers: phase, progress (epoch 1 of 3, step 70 of 300, loss 0.42, 1234 samples/s), workers. */
export function coordinatorStatus(phase: JobPhase): CoordinatorStatusWrapper {
  return new CoordinatorStatusWrapper(phase);
}

/** The coordinator's pod runs, but its status API did not answer. */
export function unreachableCoordinator(why: string): CoordinatorReport {
  return { unreachable: why };
}

/** The name of the Kueue Workload of a job (trainingjob-NAME- and 5 hex digits of its uid's SHA-256), spelled out here. */
export function workloadNameOf(job: JobRef): string {
  return `trainingjob-${job.name}-${createHash("sha256").update(`uid-${job.name}`).digest("hex").slice(0, 5)}`;
}

/** A job's Kueue Workload as Kueue left it: pending, admitted to a flavor, evicted, inactive, finished. */
export class WorkloadWrapper {
  readonly #workload: Workload;

  constructor(job: JobRef, counts: Record<string, number>) {
    const name = workloadNameOf(job);
    this.#workload = {
      apiVersion: "kueue.x-k8s.io/v1beta1",
      kind: "Workload",
      metadata: {
        name,
        namespace: job.namespace,
        uid: `uid-${name}`,
        resourceVersion: "7",
        generation: 1,
        labels: { "app.kubernetes.io/managed-by": "trainfleet-operator", "trainfleet.dev/job-name": job.name },
        ownerReferences: [
          { apiVersion: "trainfleet.dev/v1alpha1", kind: "TrainingJob", name: job.name, uid: `uid-${job.name}`, controller: true },
        ],
      },
      spec: {
        queueName: "team-vision",
        active: true,
        podSets: Object.entries(counts).map(([podSet, count]) => ({
          name: podSet,
          count,
          template: { metadata: {}, spec: { containers: [{ name: "trainfleet" }] } },
        })),
      },
      status: { conditions: [] },
    };
  }

  #condition(type: string, status: KueueCondition["status"], reason: string, message: string): this {
    const conditions = (this.#workload.status!.conditions ?? []).filter((condition) => condition.type !== type);
    conditions.push({ type, status, reason, message, lastTransitionTime: stamp(0) });
    this.#workload.status!.conditions = conditions;
    return this;
  }

  /** Kueue could not reserve quota, and said why. */
  pending(message: string): this {
    return this.#condition("QuotaReserved", "False", "Pending", message);
  }

  /** Admitted to `clusterQueue`, every resource of every pod set on `flavor`. */
  admitted(clusterQueue: string, flavor: string): this {
    this.#workload.status!.admission = {
      clusterQueue,
      podSetAssignments: this.#workload.spec.podSets.map((podSet) => ({
        name: podSet.name,
        flavors: { cpu: flavor, memory: flavor },
        count: podSet.count,
      })),
    };
    return this.#condition("QuotaReserved", "True", "QuotaReserved", `Quota reserved in ClusterQueue ${clusterQueue}`).#condition(
      "Admitted",
      "True",
      "Admitted",
      "The workload is admitted",
    );
  }

  evicted(reason: string, message: string): this {
    return this.#condition("Evicted", "True", reason, message);
  }

  inactive(): this {
    this.#workload.spec.active = false;
    return this;
  }

  finished(reason: string): this {
    return this.#condition("Finished", "True", reason, "done");
  }

  obj(): Workload {
    return structuredClone(this.#workload);
  }
}

/** The job's Workload with these pod set counts (by default a job's: 1 coordinator, 1 shard, 2 workers), with no status yet. */
export function workload(
  job: JobRef,
  counts: Record<string, number> = { coordinator: 1, "parameter-server": 1, worker: 2 },
): WorkloadWrapper {
  return new WorkloadWrapper(job, counts);
}

/** A ResourceFlavor: nodes labelled `nodeLabels`, tainted so that pods need `tolerations`. */
export function resourceFlavor(name: string, nodeLabels: Record<string, string>, tolerations: V1Toleration[] = []): ResourceFlavor {
  return { apiVersion: "kueue.x-k8s.io/v1beta1", kind: "ResourceFlavor", metadata: { name }, spec: { nodeLabels, tolerations } };
}

export class ObservedWrapper {
  readonly #job: TrainingJobWrapper;
  #pods: PodWrapper[] = [];
  #workload: WorkloadWrapper | undefined;
  #flavors: ResourceFlavor[] = [];
  #service = false;
  #podGroupExists = false;
  #coordinator: CoordinatorReport | undefined;
  #now = at(0);

  constructor(job: TrainingJobWrapper) {
    this.#job = job;
  }

  pods(...pods: PodWrapper[]): this {
    this.#pods.push(...pods);
    return this;
  }

  /** The coordinator's Service exists. */
  service(): this {
    this.#service = true;
    return this;
  }

  podGroupExists(): this {
    this.#podGroupExists = true;
    return this;
  }

  /** The job's Kueue Workload exists (as the operator's informer shows it). */
  workload(workload: WorkloadWrapper): this {
    this.#workload = workload;
    return this;
  }

  /** ResourceFlavors the operator has read. */
  flavors(...flavors: ResourceFlavor[]): this {
    this.#flavors.push(...flavors);
    return this;
  }

  coordinator(report: CoordinatorReport | CoordinatorStatusWrapper): this {
    this.#coordinator = report instanceof CoordinatorStatusWrapper ? report.obj() : report;
    return this;
  }

  /** The clock: `seconds` after t0 (t0 unless told). */
  at(seconds: number): this {
    this.#now = at(seconds);
    return this;
  }

  obj(): Observed {
    const name = `${this.#job.name}-coordinator`;
    const service: V1Service = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace: this.#job.namespace, uid: `uid-${name}-service` },
    };
    return {
      job: this.#job.obj(),
      pods: this.#pods.map((pod) => pod.obj()),
      service: this.#service ? service : undefined,
      podGroupExists: this.#podGroupExists,
      coordinator: this.#coordinator === undefined ? undefined : structuredClone(this.#coordinator),
      ...(this.#workload === undefined ? {} : { workload: this.#workload.obj() }),
      resourceFlavors: new Map(this.#flavors.map((flavor) => [flavor.metadata.name, structuredClone(flavor)])),
      now: new Date(this.#now),
    };
  }
}

/** What one reconcile of `job` sees: no pods, no Service, no coordinator status, at t0, unless told. */
export function observed(job: TrainingJobWrapper): ObservedWrapper {
  return new ObservedWrapper(job);
}

/** The operator's defaults: no gang scheduler's PodGroups, the coordinator asked every 5 s, 30 s for pods to exit after the job ended. */
export function reconcileOptions(overrides: Partial<ReconcileOptions> = {}): ReconcileOptions {
  return { podGroupApis: [], statusPollMs: 5000, finishGraceMs: 30_000, ...overrides };
}
