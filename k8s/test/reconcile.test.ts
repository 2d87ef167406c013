/**
 * Table tests of reconcile(), the operator's pure core: each row is what one pass sees (built
 * with ./builders.ts) and exactly what it plans: the objects it creates and the pods it deletes,
 * in order; the Events it records; every condition of the new status, the phase and the status
 * fields the row is about; whether the job is deleted; when the job is looked at again. A row
 * that names nothing to create, delete or record asserts that nothing is. The operator's I/O
 * around it is operator.test.ts's.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { JobPhase, WorkerState } from "@trainfleet/proto";
import { describe, expect, it } from "vitest";
import type { Workload } from "../src/kueue-workload.js";
import { reconcile } from "../src/reconcile.js";
import type { ReconcileOptions, WorkloadChange } from "../src/reconcile-plan.js";
import type { Condition, ConditionType, TrainingJobStatus } from "../src/training-job.js";
import type { JobRef, ObservedWrapper } from "./builders.js";
import {
  coordinatorStatus,
  observed,
  pod,
  reconcileOptions,
  resourceFlavor,
  runningPods,
  stamp,
  trainingJob,
  unreachableCoordinator,
  workload,
  workloadNameOf,
} from "./builders.js";

/** Every row's job is mnist in namespace ns; its pods are named for it. */
const mnist: JobRef = { namespace: "ns", name: "mnist" };
const job = () => trainingJob("ns", "mnist");

type EventRow = readonly ["Normal" | "Warning", string] | readonly ["Normal" | "Warning", string, string | RegExp];

type Row = {
  /** What the row shows, as a sentence. */
  name: string;
  given: ObservedWrapper;
  options?: Partial<ReconcileOptions>;
  /** "Kind/name" of each object to create, in order. */
  create?: string[];
  /** Names of the pods to delete, in order (each with the observed pod's uid as precondition). */
  deletePods?: string[];
  /** The changes to the job's Kueue Workload, in order: "active=false", "status", "delete". */
  workload?: string[];
  /** [type, reason] or [type, reason, message] of each Event, in order. */
  events?: EventRow[];
  deleteJob?: true;
  requeueAfterMs?: number;
} & (
  | {
      /** No status patch: nothing in the status changed. */
      statusUnchanged: true;
    }
  | {
      /** Every condition of the new status, as [status, reason]. */
      conditions: Partial<Record<ConditionType, readonly [Condition["status"], string]>>;
      phase: ConditionType;
      /** Fields of the new status, matched as a subset (conditions: each one's fields in order). */
      status?: { [Field in keyof TrainingJobStatus]?: unknown };
      /** Fields the new status must not have. */
      without?: (keyof TrainingJobStatus)[];
    }
);

function check(row: Row): void {
  const seen = row.given.obj();
  const plan = reconcile(seen, reconcileOptions(row.options));
  expect(plan.create.map((object) => `${object.kind}/${object.metadata?.name}`)).toEqual(row.create ?? []);
  expect(plan.deletePods.map((target) => target.name)).toEqual(row.deletePods ?? []);
  const uids = new Map(seen.pods.map((pod) => [pod.metadata?.name, pod.metadata?.uid]));
  for (const target of plan.deletePods) expect(target.uid).toBe(uids.get(target.name));
  expect(plan.workload.map(describeWorkloadChange)).toEqual(row.workload ?? []);
  const events = row.events ?? [];
  expect(plan.events.map((event) => [event.type, event.reason])).toEqual(events.map(([type, reason]) => [type, reason]));
  events.forEach(([, , message], index) => {
    if (message instanceof RegExp) expect(plan.events[index]!.message).toMatch(message);
    else if (message !== undefined) expect(plan.events[index]!.message).toBe(message);
  });
  expect(plan.deleteJob).toBe(row.deleteJob ?? false);
  expect(plan.requeueAfterMs).toBe(row.requeueAfterMs);
  if ("statusUnchanged" in row) {
    expect(plan.status).toBeUndefined();
    return;
  }
  expect(plan.status).toBeDefined();
  const status = plan.status!;
  expect(Object.fromEntries((status.conditions ?? []).map((condition) => [condition.type, [condition.status, condition.reason]]))).toEqual(
    row.conditions,
  );
  expect(status.phase).toBe(row.phase);
  expect(status).toMatchObject(row.status ?? {});
  for (const field of row.without ?? []) expect(status).not.toHaveProperty(field);
}

function describeWorkloadChange(change: WorkloadChange): string {
  return change.action === "setActive" ? `active=${change.active}` : change.action === "patchStatus" ? "status" : "delete";
}

const created = ["True", "TrainingJobCreated"] as const;
const admitted = ["True", "Admitted"] as const;
const training = ["True", "Training"] as const;
/** "Pod/name" of the coordinator, `shards` shards and `workers` workers, in the order a pass creates them. */
const allPods = (shards: number, workers: number) => [
  "Pod/mnist-coordinator",
  ...Array.from({ length: shards }, (_, index) => `Pod/mnist-ps-${index}`),
  ...Array.from({ length: workers }, (_, rank) => `Pod/mnist-worker-${rank}`),
];

/** A job that runs steadily: every pod Running, the coordinator training both workers. */
const steady = (runningJob = job().running()) =>
  observed(runningJob)
    .service()
    .pods(...runningPods(mnist, 1, 2))
    .coordinator(coordinatorStatus(JobPhase.RUNNING).training(2));
/** The status one pass over `given` writes. */
const written = (given: ObservedWrapper) => reconcile(given.obj(), reconcileOptions()).status!;

describe("reconcile: creating what the job needs", () => {
  const rows: Row[] = [
    {
      name: "a new job gets the coordinator's Service, the coordinator, each shard and each worker, and is Created and Admitted at once",
      given: observed(job().shards(2)),
      create: ["Service/mnist-coordinator", "NetworkPolicy/mnist-network", ...allPods(2, 2)],
      events: [
        ["Normal", "TrainingJobCreated", "TrainingJob mnist was accepted by the operator"],
        ["Normal", "Admitted", "gang admission is off: the job's pods are created at once"],
      ],
      conditions: { Created: created, Admitted: admitted },
      phase: "Admitted",
      status: {
        selector: "trainfleet.dev/job-name=mnist,trainfleet.dev/role=worker",
        coordinatorEndpoint: "mnist-coordinator.ns.svc:7080",
        startTime: stamp(0),
        replicas: 2,
        trainingReplicas: 2,
        observedGeneration: 1,
      },
      without: ["restarts", "completionTime"],
      requeueAfterMs: 5000,
    },
    {
      name: "pods and a Service that exist are not created again, and startTime stays when nothing new starts",
      given: steady().at(100),
      conditions: { Created: created, Admitted: admitted, Running: training },
      phase: "Running",
      status: { startTime: stamp(0), replicas: 2, readyReplicas: 2 },
      requeueAfterMs: 5000,
    },
    {
      name: "only what is missing is created: a shard whose pod is gone gets a new one",
      given: observed(job().running())
        .service()
        .pods(pod(mnist, "coordinator"), pod(mnist, "worker", 0), pod(mnist, "worker", 1))
        .coordinator(coordinatorStatus(JobPhase.RUNNING).training(2))
        .at(100),
      create: ["NetworkPolicy/mnist-network", "Pod/mnist-ps-0"],
      conditions: { Created: created, Admitted: admitted, Running: training },
      phase: "Running",
      status: { startTime: stamp(0) },
      requeueAfterMs: 5000,
    },
    {
      name: "a pod still terminating keeps its name: it is made again only once it is gone, and its rank still counts",
      given: observed(job().running())
        .service()
        .pods(pod(mnist, "coordinator"), pod(mnist, "parameter-server", 0), pod(mnist, "worker", 0), pod(mnist, "worker", 1).terminating())
        .coordinator(coordinatorStatus(JobPhase.RUNNING).training(1)),
      conditions: { Created: created, Admitted: admitted, Running: training },
      phase: "Running",
      status: { replicas: 2, readyReplicas: 1 },
      requeueAfterMs: 5000,
    },
    {
      name: "with a gang scheduler's PodGroups allowed, the job's PodGroup is created first, then its Service and pods",
      given: observed(job().gang().schedulerName("volcano")),
      options: { podGroupApis: ["volcano"] },
      create: ["PodGroup/mnist", "Service/mnist-coordinator", "NetworkPolicy/mnist-network", ...allPods(1, 2)],
      events: [
        ["Normal", "TrainingJobCreated"],
        [
          "Normal",
          "WaitingForGang",
          "0 of 4 pods of the minimum set are scheduled; not yet: mnist-coordinator (not created yet), mnist-ps-0 (not created yet), mnist-worker-0 (not created yet), mnist-worker-1 (not created yet); the job fails at 2025-06-01T12:05:00Z",
        ],
      ],
      conditions: { Created: created, Admitted: ["False", "WaitingForGang"] },
      phase: "Created",
      requeueAfterMs: 5000,
    },
    {
      name: "a PodGroup that exists is not created again",
      given: observed(job().gang().schedulerName("volcano")).podGroupExists(),
      options: { podGroupApis: ["volcano"] },
      create: ["Service/mnist-coordinator", "NetworkPolicy/mnist-network", ...allPods(1, 2)],
      events: [
        ["Normal", "TrainingJobCreated"],
        ["Normal", "WaitingForGang"],
      ],
      conditions: { Created: created, Admitted: ["False", "WaitingForGang"] },
      phase: "Created",
      requeueAfterMs: 5000,
    },
    {
      name: "a job being deleted gets nothing new, only its Created condition and base status",
      given: observed(job().deleting()),
      events: [["Normal", "TrainingJobCreated"]],
      conditions: { Created: created },
      phase: "Created",
      status: { replicas: 0, selector: "trainfleet.dev/job-name=mnist,trainfleet.dev/role=worker" },
      without: ["startTime", "trainingReplicas"],
    },
  ];
  for (const row of rows) it(row.name, () => check(row));
});

describe("reconcile: scaling workers", () => {
  const rows: Row[] = [
    {
      name: "scaling up from 2 to 3 workers creates only worker 2, restarts nothing, and is Rescaling ScalingUp",
      given: steady(job().replicas(2).running().replicas(3)),
      create: ["NetworkPolicy/mnist-network", "Pod/mnist-worker-2"],
      events: [["Normal", "ScalingUp", "worker pods: 2 -> 3"]],
      conditions: { Created: created, Admitted: admitted, Running: training, Rescaling: ["True", "ScalingUp"] },
      phase: "Rescaling",
      status: { replicas: 3, trainingReplicas: 2 },
      requeueAfterMs: 5000,
    },
    {
      name: "scaling down from 3 to 1 deletes the highest ranks and nothing else, and is Rescaling ScalingDown (their ranks count until they are gone)",
      given: observed(job().replicas(3).running().replicas(1))
        .service()
        .pods(...runningPods(mnist, 1, 3))
        .coordinator(coordinatorStatus(JobPhase.RUNNING).training(3)),
      deletePods: ["mnist-worker-1", "mnist-worker-2"],
      events: [["Normal", "ScalingDown", "worker pods: 3 -> 1"]],
      conditions: { Created: created, Admitted: admitted, Running: training, Rescaling: ["True", "ScalingDown"] },
      phase: "Rescaling",
      status: { replicas: 3, trainingReplicas: 3 },
      requeueAfterMs: 5000,
    },
    {
      name: "a worker above the desired count that is already terminating is not deleted again",
      given: observed(job().replicas(3).running().replicas(2))
        .service()
        .pods(...runningPods(mnist, 1, 2), pod(mnist, "worker", 2).terminating())
        .coordinator(coordinatorStatus(JobPhase.RUNNING).training(2)),
      events: [["Normal", "ScalingDown", "worker pods: 3 -> 2"]],
      conditions: { Created: created, Admitted: admitted, Running: training, Rescaling: ["True", "ScalingDown"] },
      phase: "Rescaling",
      status: { replicas: 3 },
      requeueAfterMs: 5000,
    },
    {
      name: "a failed worker above the desired count, wanted gone by two rules, is deleted once",
      given: observed(job().replicas(3).running().replicas(2))
        .service()
        .pods(...runningPods(mnist, 1, 2), pod(mnist, "worker", 2).exitCode(1))
        .coordinator(coordinatorStatus(JobPhase.RUNNING).training(2)),
      deletePods: ["mnist-worker-2"],
      events: [
        ["Warning", "WorkerPodFailed"],
        ["Normal", "ScalingDown", "worker pods: 3 -> 2"],
      ],
      conditions: { Created: created, Admitted: admitted, Running: training, Rescaling: ["True", "ScalingDown"] },
      phase: "Rescaling",
      requeueAfterMs: 5000,
    },
    {
      name: "while new workers join, Rescaling waits (WaitingForWorkers) until the coordinator reports each one training",
      given: observed(job().replicas(2).running().replicas(3).status({ replicas: 3 }).condition("Rescaling", "True", "ScalingUp"))
        .service()
        .pods(...runningPods(mnist, 1, 3))
        .coordinator(coordinatorStatus(JobPhase.RUNNING).workers(WorkerState.TRAINING, WorkerState.TRAINING, WorkerState.REGISTERED)),
      events: [["Normal", "WaitingForWorkers", "2 of 3 workers training"]],
      conditions: { Created: created, Admitted: admitted, Running: training, Rescaling: ["True", "WaitingForWorkers"] },
      phase: "Rescaling",
      status: { replicas: 3, readyReplicas: 2 },
      requeueAfterMs: 5000,
    },
    {
      name: "Rescaling ends (Rescaled) once the coordinator reports every desired worker training",
      given: observed(job().replicas(2).running().replicas(3).status({ replicas: 3 }).condition("Rescaling", "True", "WaitingForWorkers"))
        .service()
        .pods(...runningPods(mnist, 1, 3))
        .coordinator(coordinatorStatus(JobPhase.RUNNING).training(3)),
      events: [["Normal", "Rescaled", "3 workers training"]],
      conditions: { Created: created, Admitted: admitted, Running: training, Rescaling: ["False", "Rescaled"] },
      phase: "Running",
      requeueAfterMs: 5000,
    },
    {
      name: "with maxWorkers, Rescaled needs only maxWorkers training: the others stand by",
      given: observed(
        job().replicas(2).maxWorkers(2).running().replicas(3).status({ replicas: 3 }).condition("Rescaling", "True", "WaitingForWorkers"),
      )
        .service()
        .pods(...runningPods(mnist, 1, 3))
        .coordinator(coordinatorStatus(JobPhase.RUNNING).workers(WorkerState.TRAINING, WorkerState.TRAINING, WorkerState.STANDBY)),
      events: [["Normal", "Rescaled", "3 workers training"]],
      conditions: { Created: created, Admitted: admitted, Running: training, Rescaling: ["False", "Rescaled"] },
      phase: "Running",
      requeueAfterMs: 5000,
    },
    {
      name: "colocated placement keeps the workers it started with: nothing is created, and Rescaling is False NotElastic",
      given: observed(job().colocated().replicas(2).running().replicas(3))
        .service()
        .pods(pod(mnist, "coordinator"), pod(mnist, "worker", 0), pod(mnist, "worker", 1))
        .coordinator(coordinatorStatus(JobPhase.RUNNING).training(2)),
      events: [
        [
          "Normal",
          "NotElastic",
          "colocated placement runs a shard in each worker: the job keeps its 2 workers (spec.workers.replicas is 3)",
        ],
      ],
      conditions: { Created: created, Admitted: admitted, Running: training, Rescaling: ["False", "NotElastic"] },
      phase: "Running",
      status: { replicas: 2 },
      requeueAfterMs: 5000,
    },
  ];
  for (const row of rows) it(row.name, () => check(row));
});

describe("reconcile: suspend and resume", () => {
  const rows: Row[] = [
    {
      name: "suspending a running job deletes every pod, clears startTime, Running and Admitted, and is Suspended",
      given: observed(job().running().suspend(true))
        .service()
        .pods(...runningPods(mnist, 1, 2))
        .at(100),
      deletePods: ["mnist-coordinator", "mnist-ps-0", "mnist-worker-0", "mnist-worker-1"],
      events: [
        ["Normal", "Suspended", "the job is suspended"],
        ["Normal", "Suspended", "the job is suspended"],
        ["Normal", "Suspended", "runPolicy.suspend is true: the job's pods are deleted until it is false again"],
      ],
      conditions: { Created: created, Admitted: ["False", "Suspended"], Running: ["False", "Suspended"], Suspended: ["True", "Suspended"] },
      phase: "Suspended",
      without: ["startTime"],
    },
    {
      name: "a job in a Kueue queue, suspended while the operator's Kueue integration is off, is plainly Suspended (nothing would admit it)",
      given: observed(job().queue("team-vision").suspend(true)),
      events: [
        ["Normal", "TrainingJobCreated"],
        ["Normal", "Suspended", "runPolicy.suspend is true: the job's pods are deleted until it is false again"],
      ],
      conditions: { Created: created, Suspended: ["True", "Suspended"] },
      phase: "Suspended",
      without: ["startTime", "trainingReplicas"],
    },
    {
      name: "resuming creates the pods again, starts the clock again, and is Suspended False Resumed, which is no rescale",
      given: observed(
        job()
          .condition("Created", "True", "TrainingJobCreated")
          .condition("Admitted", "False", "Suspended")
          .condition("Running", "False", "Suspended")
          .condition("Suspended", "True", "Suspended")
          .status({ replicas: 0, trainingReplicas: 2 }),
      )
        .service()
        .at(100),
      create: ["NetworkPolicy/mnist-network", ...allPods(1, 2)],
      events: [
        ["Normal", "Admitted"],
        ["Normal", "CoordinatorStarting", "pod mnist-coordinator is not running yet"],
        ["Normal", "Resumed", "the job was resumed (runPolicy.suspend is false)"],
      ],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "CoordinatorStarting"], Suspended: ["False", "Resumed"] },
      phase: "Admitted",
      status: { startTime: stamp(100), replicas: 2 },
      requeueAfterMs: 5000,
    },
  ];
  for (const row of rows) it(row.name, () => check(row));
});

describe("reconcile: failed pods and backoffLimit", () => {
  const rows: Row[] = [
    {
      name: "a failed worker is deleted to be made again, with a WorkerPodFailed Warning quoting its last log line; it does not count against backoffLimit and is no rescale",
      given: observed(job().running())
        .service()
        .pods(
          pod(mnist, "coordinator"),
          pod(mnist, "parameter-server", 0),
          pod(mnist, "worker", 0),
          pod(mnist, "worker", 1).exitCode(1, "registered\nno Fashion-MNIST data found\n"),
        )
        .coordinator(coordinatorStatus(JobPhase.RUNNING).training(1)),
      deletePods: ["mnist-worker-1"],
      events: [
        [
          "Warning",
          "WorkerPodFailed",
          "mnist-worker-1 exited 1 (Error): no Fashion-MNIST data found; it is made again (lost workers do not count against runPolicy.backoffLimit)",
        ],
      ],
      conditions: { Created: created, Admitted: admitted, Running: training },
      phase: "Running",
      status: { replicas: 2 },
      without: ["restarts"],
      requeueAfterMs: 5000,
    },
    {
      name: "a failed shard restarts the job: its pod is deleted, restarts is 1, and Restarting is True ParameterServerFailed (a Warning)",
      given: observed(job().running())
        .service()
        .pods(pod(mnist, "coordinator"), pod(mnist, "parameter-server", 0).exitCode(1), pod(mnist, "worker", 0), pod(mnist, "worker", 1))
        .coordinator(coordinatorStatus(JobPhase.RUNNING).training(2)),
      deletePods: ["mnist-ps-0"],
      events: [["Warning", "ParameterServerFailed", "mnist-ps-0 exited 1 (Error); restart 1 of at most 3, from the newest checkpoint"]],
      conditions: { Created: created, Admitted: admitted, Running: training, Restarting: ["True", "ParameterServerFailed"] },
      phase: "Restarting",
      status: { restarts: 1 },
      requeueAfterMs: 5000,
    },
    {
      name: "a failed coordinator restarts the job as CoordinatorFailed, and a failed worker is deleted with it",
      given: observed(job().running().backoffLimit(2).status({ restarts: 1 }))
        .service()
        .pods(
          pod(mnist, "coordinator").exitCode(137),
          pod(mnist, "parameter-server", 0),
          pod(mnist, "worker", 0).exitCode(1),
          pod(mnist, "worker", 1),
        ),
      deletePods: ["mnist-coordinator", "mnist-worker-0"],
      events: [
        ["Warning", "WorkerPodFailed"],
        ["Normal", "CoordinatorStarting"],
        ["Warning", "CoordinatorFailed", "mnist-coordinator exited 137 (Error); restart 2 of at most 2, from the newest checkpoint"],
      ],
      conditions: {
        Created: created,
        Admitted: admitted,
        Running: ["False", "CoordinatorStarting"],
        Restarting: ["True", "CoordinatorFailed"],
      },
      phase: "Restarting",
      status: { restarts: 2, replicas: 2 },
      requeueAfterMs: 5000,
    },
    {
      name: "a failure beyond backoffLimit fails the job (BackoffLimitExceeded): the failed pod stays for its logs, the running ones go at once",
      given: observed(job().running().backoffLimit(1).status({ restarts: 1 }))
        .service()
        .pods(
          pod(mnist, "coordinator"),
          pod(mnist, "parameter-server", 0).exitCode(1, "out of memory"),
          pod(mnist, "worker", 0),
          pod(mnist, "worker", 1),
        )
        .coordinator(coordinatorStatus(JobPhase.RUNNING).training(2))
        .at(100),
      deletePods: ["mnist-coordinator", "mnist-worker-0", "mnist-worker-1"],
      events: [
        ["Normal", "JobFailed", "the job failed: BackoffLimitExceeded"],
        [
          "Warning",
          "BackoffLimitExceeded",
          "mnist-ps-0 exited 1 (Error): out of memory; the job was already restarted 1 times, runPolicy.backoffLimit is 1",
        ],
      ],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "JobFailed"], Failed: ["True", "BackoffLimitExceeded"] },
      phase: "Failed",
      status: { restarts: 1, completionTime: stamp(100) },
    },
    {
      name: "backoffLimit is 3 when unset: the fourth restart fails the job",
      given: observed(job().running().status({ restarts: 3 }))
        .service()
        .pods(pod(mnist, "coordinator").exitCode(1), ...runningPods(mnist, 1, 2).slice(1)),
      deletePods: ["mnist-ps-0", "mnist-worker-0", "mnist-worker-1"],
      events: [
        ["Normal", "JobFailed"],
        [
          "Warning",
          "BackoffLimitExceeded",
          "mnist-coordinator exited 1 (Error); the job was already restarted 3 times, runPolicy.backoffLimit is 3",
        ],
      ],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "JobFailed"], Failed: ["True", "BackoffLimitExceeded"] },
      phase: "Failed",
      status: { restarts: 3 },
    },
    {
      name: "Restarting ends (Recovered) once the coordinator and every shard run and the coordinator trains again",
      given: steady(job().running().status({ restarts: 1 }).condition("Restarting", "True", "ParameterServerFailed")),
      events: [["Normal", "Recovered", "the coordinator and every shard run again, and the coordinator reports the job training"]],
      conditions: { Created: created, Admitted: admitted, Running: training, Restarting: ["False", "Recovered"] },
      phase: "Running",
      status: { restarts: 1 },
      requeueAfterMs: 5000,
    },
    {
      name: "Restarting stays True while a shard is not running yet",
      given: observed(job().running().status({ restarts: 1 }).condition("Restarting", "True", "ParameterServerFailed"))
        .service()
        .pods(
          pod(mnist, "coordinator"),
          pod(mnist, "parameter-server", 0).phase("Pending"),
          pod(mnist, "worker", 0),
          pod(mnist, "worker", 1),
        )
        .coordinator(coordinatorStatus(JobPhase.RUNNING).training(2)),
      conditions: { Created: created, Admitted: admitted, Running: training, Restarting: ["True", "ParameterServerFailed"] },
      phase: "Restarting",
      requeueAfterMs: 5000,
    },
  ];
  for (const row of rows) it(row.name, () => check(row));
});

describe("reconcile: activeDeadlineSeconds", () => {
  const rows: Row[] = [
    {
      name: "before activeDeadlineSeconds have passed since startTime, the job is looked at again when they will have",
      given: steady(job().running().activeDeadlineSeconds(60)).at(58),
      conditions: { Created: created, Admitted: admitted, Running: training },
      phase: "Running",
      requeueAfterMs: 2000,
    },
    {
      name: "once activeDeadlineSeconds have passed since startTime, the job fails (DeadlineExceeded) and its pods go at once",
      given: steady(job().running().activeDeadlineSeconds(60)).at(60),
      deletePods: ["mnist-coordinator", "mnist-ps-0", "mnist-worker-0", "mnist-worker-1"],
      events: [
        ["Normal", "JobFailed", "the job failed: DeadlineExceeded"],
        ["Warning", "DeadlineExceeded", "the job was active longer than runPolicy.activeDeadlineSeconds (60 s)"],
      ],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "JobFailed"], Failed: ["True", "DeadlineExceeded"] },
      phase: "Failed",
      status: { completionTime: stamp(60) },
    },
    {
      name: "a suspended job has no startTime, so activeDeadlineSeconds does not run out while it waits",
      given: observed(
        job()
          .activeDeadlineSeconds(60)
          .suspend(true)
          .condition("Created", "True", "TrainingJobCreated")
          .condition("Suspended", "True", "Suspended"),
      ).at(1000),
      conditions: { Created: created, Suspended: ["True", "Suspended"] },
      phase: "Suspended",
      without: ["startTime", "completionTime"],
    },
  ];
  for (const row of rows) it(row.name, () => check(row));
});

describe("reconcile: a finished job's pods (cleanPodPolicy) and the job itself (ttlSecondsAfterFinished)", () => {
  /** A job its coordinator ended at t0: the coordinator and a shard run, worker 0 exited 0, worker 1 still runs. */
  const ended = (finished = job().finished("Succeeded", "Completed")) =>
    observed(finished)
      .service()
      .pods(pod(mnist, "coordinator"), pod(mnist, "parameter-server", 0), pod(mnist, "worker", 0).exitCode(0), pod(mnist, "worker", 1));
  const succeeded = {
    conditions: { Created: created, Admitted: admitted, Running: ["False", "JobSucceeded"], Succeeded: ["True", "Completed"] },
    phase: "Succeeded",
  } as const;
  const rows: Row[] = [
    {
      name: "cleanPodPolicy Running (the default): after the coordinator ended the job its own pod goes at once, and shards and workers get 30 s to exit by themselves",
      given: ended().at(10),
      deletePods: ["mnist-coordinator"],
      ...succeeded,
      status: { replicas: 1 },
      requeueAfterMs: 20_000,
    },
    {
      name: "cleanPodPolicy Running: after the 30 s grace every pod still running goes, and finished ones stay",
      given: ended().at(30),
      deletePods: ["mnist-coordinator", "mnist-ps-0", "mnist-worker-1"],
      ...succeeded,
    },
    {
      name: "cleanPodPolicy All: during the grace finished pods go too, and running shards and workers get the rest of it",
      given: ended(job().finished("Succeeded", "Completed").cleanPodPolicy("All")).at(10),
      deletePods: ["mnist-coordinator", "mnist-worker-0"],
      ...succeeded,
      requeueAfterMs: 20_000,
    },
    {
      name: "cleanPodPolicy All: after the grace every pod goes",
      given: ended(job().finished("Succeeded", "Completed").cleanPodPolicy("All")).at(30),
      deletePods: ["mnist-coordinator", "mnist-ps-0", "mnist-worker-0", "mnist-worker-1"],
      ...succeeded,
    },
    {
      name: "cleanPodPolicy None: no pod is deleted",
      given: ended(job().finished("Succeeded", "Completed").cleanPodPolicy("None")).at(30),
      ...succeeded,
    },
    {
      name: "the grace is the operator's finishGraceMs",
      given: ended().at(10),
      options: { finishGraceMs: 5000 },
      deletePods: ["mnist-coordinator", "mnist-ps-0", "mnist-worker-1"],
      ...succeeded,
    },
    {
      name: "an outcome the operator decided (DeadlineExceeded) stopped nobody: there is no grace, the running pods go at once",
      given: ended(job().finished("Failed", "DeadlineExceeded")).at(1),
      deletePods: ["mnist-coordinator", "mnist-ps-0", "mnist-worker-1"],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "JobFailed"], Failed: ["True", "DeadlineExceeded"] },
      phase: "Failed",
    },
    {
      name: "a finished job is deleted ttlSecondsAfterFinished after its completionTime",
      given: observed(job().finished("Succeeded", "Completed").ttlSecondsAfterFinished(100)).at(100),
      deleteJob: true,
      ...succeeded,
    },
    {
      name: "before its TTL a finished job is looked at again when the TTL runs out",
      given: observed(job().finished("Succeeded", "Completed").ttlSecondsAfterFinished(100)).at(40),
      ...succeeded,
      requeueAfterMs: 60_000,
    },
    {
      name: "without ttlSecondsAfterFinished a finished job stays, and is not looked at again",
      given: observed(job().finished("Succeeded", "Completed")).at(100_000),
      ...succeeded,
    },
  ];
  for (const row of rows) it(row.name, () => check(row));
});

describe("reconcile: the status and conditions from the coordinator's report", () => {
  const startedNotRunning = () => job().running().condition("Running", "False", "CoordinatorStarting");
  const rows: Row[] = [
    {
      name: "while the coordinator trains, Running is True Training with its epoch and step, and its progress is copied into the status",
      given: observed(startedNotRunning())
        .service()
        .pods(...runningPods(mnist, 1, 2))
        .coordinator(
          coordinatorStatus(JobPhase.RUNNING)
            .progress(1, 3, 70, 300)
            .loss(0.42)
            .testAccuracy(0.9)
            .workers(WorkerState.TRAINING, WorkerState.EVALUATING, WorkerState.REGISTERED)
            .checkpoint(5, 50),
        )
        .at(60),
      events: [["Normal", "Training", "epoch 1 of 3, step 70 of 300"]],
      conditions: { Created: created, Admitted: admitted, Running: training },
      phase: "Running",
      status: {
        epoch: 1,
        step: 70,
        loss: 0.42,
        accuracy: 0.9,
        samplesPerSecond: 1234,
        readyReplicas: 2,
        lastCheckpoint: { step: 5, time: stamp(50) },
      },
      requeueAfterMs: 5000,
    },
    {
      name: "a loss that is not a number is not copied: the last one stays",
      given: steady(job().running().status({ loss: 0.5 })).coordinator(coordinatorStatus(JobPhase.RUNNING).loss(Number.NaN).training(2)),
      conditions: { Created: created, Admitted: admitted, Running: training },
      phase: "Running",
      status: { loss: 0.5 },
      requeueAfterMs: 5000,
    },
    {
      name: "while the workers evaluate the test set, Running is True Evaluating",
      given: steady().coordinator(coordinatorStatus(JobPhase.EVALUATING)),
      events: [["Normal", "Evaluating", "training is done; the workers evaluate the test set"]],
      conditions: { Created: created, Admitted: admitted, Running: ["True", "Evaluating"] },
      phase: "Running",
      requeueAfterMs: 5000,
    },
    {
      name: "a paused coordinator makes Running False with its own reason and message",
      given: steady().coordinator(coordinatorStatus(JobPhase.PAUSED).because("NotEnoughWorkers", "1 of 2 workers; waiting up to 300 s")),
      events: [["Normal", "NotEnoughWorkers", "1 of 2 workers; waiting up to 300 s"]],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "NotEnoughWorkers"] },
      phase: "Admitted",
      requeueAfterMs: 5000,
    },
    {
      name: "while the coordinator waits for its shards and workers, Running is False WaitingForMembers",
      given: steady().coordinator(coordinatorStatus(JobPhase.PENDING)),
      events: [["Normal", "WaitingForMembers", "waiting for the shards and workers to register"]],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "WaitingForMembers"] },
      phase: "Admitted",
      requeueAfterMs: 5000,
    },
    {
      name: "a coordinator whose status API does not answer makes Running Unknown, a Warning",
      given: steady().coordinator(unreachableCoordinator("GET http://mnist-coordinator.ns.svc:7080/v1/jobs/mnist: connect ECONNREFUSED")),
      events: [["Warning", "CoordinatorUnreachable", "GET http://mnist-coordinator.ns.svc:7080/v1/jobs/mnist: connect ECONNREFUSED"]],
      conditions: { Created: created, Admitted: admitted, Running: ["Unknown", "CoordinatorUnreachable"] },
      phase: "Admitted",
      requeueAfterMs: 5000,
    },
    {
      name: "before Running was ever set, a coordinator that does not answer sets nothing",
      given: observed(
        job()
          .condition("Created", "True", "TrainingJobCreated")
          .condition("Admitted", "True", "Admitted")
          .status({ startTime: stamp(0), replicas: 2, trainingReplicas: 2 }),
      )
        .service()
        .pods(...runningPods(mnist, 1, 2))
        .coordinator(unreachableCoordinator("timeout")),
      conditions: { Created: created, Admitted: admitted },
      phase: "Admitted",
      requeueAfterMs: 5000,
    },
    {
      name: "a coordinator that is not running yet makes Running False CoordinatorStarting, from this pass's time",
      given: observed(job().running())
        .service()
        .pods(pod(mnist, "coordinator").phase("Pending"), ...runningPods(mnist, 1, 2).slice(1))
        .at(30),
      events: [["Normal", "CoordinatorStarting", "pod mnist-coordinator is not running yet"]],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "CoordinatorStarting"] },
      phase: "Admitted",
      status: {
        conditions: [
          { type: "Created", lastTransitionTime: stamp(0) },
          { type: "Admitted", lastTransitionTime: stamp(0) },
          { type: "Running", lastTransitionTime: stamp(30) },
        ],
      },
      requeueAfterMs: 5000,
    },
    {
      name: "the coordinator reporting success succeeds the job with its reason, sets completionTime and clears Running; its own pod goes at once",
      given: steady().coordinator(coordinatorStatus(JobPhase.SUCCEEDED).because("MaxStepsReached", "trained 300 steps")).at(10),
      deletePods: ["mnist-coordinator"],
      events: [
        ["Normal", "JobSucceeded", "the job succeeded: MaxStepsReached"],
        ["Normal", "MaxStepsReached", "trained 300 steps"],
      ],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "JobSucceeded"], Succeeded: ["True", "MaxStepsReached"] },
      phase: "Succeeded",
      status: { completionTime: stamp(10) },
      requeueAfterMs: 30_000,
    },
    {
      name: "a success the coordinator gives no reason for is Completed",
      given: steady().coordinator(coordinatorStatus(JobPhase.SUCCEEDED)),
      deletePods: ["mnist-coordinator"],
      events: [
        ["Normal", "JobSucceeded"],
        ["Normal", "Completed", "the coordinator reports the job succeeded"],
      ],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "JobSucceeded"], Succeeded: ["True", "Completed"] },
      phase: "Succeeded",
      requeueAfterMs: 30_000,
    },
    {
      name: "the coordinator reporting failure fails the job with its reason, a Warning",
      given: steady().coordinator(coordinatorStatus(JobPhase.FAILED).because("PauseTimeout", "fewer than 2 workers for 300 s")),
      deletePods: ["mnist-coordinator"],
      events: [
        ["Normal", "JobFailed", "the job failed: PauseTimeout"],
        ["Warning", "PauseTimeout", "fewer than 2 workers for 300 s"],
      ],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "JobFailed"], Failed: ["True", "PauseTimeout"] },
      phase: "Failed",
      status: { completionTime: stamp(0) },
      requeueAfterMs: 30_000,
    },
    {
      name: "a failure the coordinator gives no reason for is CoordinatorFailed",
      given: steady().coordinator(coordinatorStatus(JobPhase.FAILED)),
      deletePods: ["mnist-coordinator"],
      events: [
        ["Normal", "JobFailed"],
        ["Warning", "CoordinatorFailed", "the coordinator reports the job failed"],
      ],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "JobFailed"], Failed: ["True", "CoordinatorFailed"] },
      phase: "Failed",
      requeueAfterMs: 30_000,
    },
    {
      name: "a coordinator pod that exited 0 with no status to read succeeded the job (CoordinatorSucceeded)",
      given: observed(job().running())
        .service()
        .pods(pod(mnist, "coordinator").exitCode(0), ...runningPods(mnist, 1, 2).slice(1))
        .at(5),
      events: [
        ["Normal", "JobSucceeded"],
        ["Normal", "CoordinatorSucceeded", "pod mnist-coordinator exited 0: the job is done"],
      ],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "JobSucceeded"], Succeeded: ["True", "CoordinatorSucceeded"] },
      phase: "Succeeded",
      status: { completionTime: stamp(5) },
      requeueAfterMs: 30_000,
    },
  ];
  for (const row of rows) it(row.name, () => check(row));
});

describe("reconcile: the job's output (spec.output) and a coordinator that cannot start", () => {
  const modelFiles = ["parameters.f32", "parameters.json", "model.json", "weights.bin", "status.json"];
  const outputJob = () => job().running().output("models");
  const rows: Row[] = [
    {
      name: "the coordinator reporting success puts where it wrote the model in status.output: the claim, NAME-UID, every file, when the job ended",
      given: steady(outputJob()).coordinator(coordinatorStatus(JobPhase.SUCCEEDED).finishedAt(8)).at(10),
      deletePods: ["mnist-coordinator"],
      events: [
        ["Normal", "JobSucceeded"],
        ["Normal", "Completed"],
      ],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "JobSucceeded"], Succeeded: ["True", "Completed"] },
      phase: "Succeeded",
      status: { output: { claimName: "models", path: "mnist-uid-mnist", files: modelFiles, writtenAt: stamp(8) } },
      requeueAfterMs: 30_000,
    },
    {
      name: "a job the coordinator failed has its final status.json there, and no model; spec.output.path is the folder",
      given: steady(job().running().output("models", "runs/mnist"))
        .coordinator(coordinatorStatus(JobPhase.FAILED).because("PauseTimeout", "fewer than 2 workers for 300 s").finishedAt(3))
        .at(4),
      deletePods: ["mnist-coordinator"],
      events: [
        ["Normal", "JobFailed"],
        ["Warning", "PauseTimeout"],
      ],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "JobFailed"], Failed: ["True", "PauseTimeout"] },
      phase: "Failed",
      status: { output: { claimName: "models", path: "runs/mnist", files: ["status.json"], writtenAt: stamp(3) } },
      requeueAfterMs: 30_000,
    },
    {
      name: "a coordinator pod that exited 0 wrote the model too: status.output dated by completionTime",
      given: observed(outputJob())
        .service()
        .pods(pod(mnist, "coordinator").exitCode(0), ...runningPods(mnist, 1, 2).slice(1))
        .at(5),
      events: [
        ["Normal", "JobSucceeded"],
        ["Normal", "CoordinatorSucceeded"],
      ],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "JobSucceeded"], Succeeded: ["True", "CoordinatorSucceeded"] },
      phase: "Succeeded",
      status: {
        completionTime: stamp(5),
        output: { claimName: "models", path: "mnist-uid-mnist", files: modelFiles, writtenAt: stamp(5) },
      },
      requeueAfterMs: 30_000,
    },
    {
      name: "a job the operator failed, not its coordinator (the backoff limit), says nothing was written",
      given: observed(outputJob().backoffLimit(0))
        .service()
        .pods(pod(mnist, "coordinator").exitCode(1, "panic"), ...runningPods(mnist, 1, 2).slice(1))
        .at(5),
      deletePods: ["mnist-ps-0", "mnist-worker-0", "mnist-worker-1"],
      events: [
        ["Normal", "JobFailed"],
        ["Warning", "BackoffLimitExceeded"],
      ],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "JobFailed"], Failed: ["True", "BackoffLimitExceeded"] },
      phase: "Failed",
      without: ["output"],
    },
    {
      name: "without spec.output a succeeded job has no status.output",
      given: steady().coordinator(coordinatorStatus(JobPhase.SUCCEEDED).finishedAt(8)),
      deletePods: ["mnist-coordinator"],
      events: [
        ["Normal", "JobSucceeded"],
        ["Normal", "Completed"],
      ],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "JobSucceeded"], Succeeded: ["True", "Completed"] },
      phase: "Succeeded",
      without: ["output"],
      requeueAfterMs: 30_000,
    },
    {
      name: "a coordinator pod the scheduler cannot place (its output claim does not exist) makes Running False CoordinatorUnschedulable with the scheduler's words, even before Running was set",
      given: observed(
        job()
          .output("models")
          .condition("Created", "True", "TrainingJobCreated")
          .condition("Admitted", "True", "Admitted")
          .status({ startTime: stamp(0), replicas: 2, trainingReplicas: 2 }),
      )
        .service()
        .pods(
          pod(mnist, "coordinator").unschedulable('0/3 nodes are available: persistentvolumeclaim "models" not found.'),
          ...runningPods(mnist, 1, 2).slice(1),
        )
        .at(20),
      events: [
        [
          "Normal",
          "CoordinatorUnschedulable",
          'pod mnist-coordinator cannot start: Unschedulable: 0/3 nodes are available: persistentvolumeclaim "models" not found.',
        ],
      ],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "CoordinatorUnschedulable"] },
      phase: "Admitted",
      requeueAfterMs: 5000,
    },
  ];
  for (const row of rows) it(row.name, () => check(row));
});

describe("reconcile: gang admission by the operator", () => {
  /**
   * Started with 3 workers, of which 2 are the minimum, and scaled to 4 since: the minimum set is
   * what its coordinator waits for, the coordinator, the shard and the 3 workers it started with
   * (whatever minWorkers); worker 3 is beyond it.
   */
  const gangJob = () =>
    job()
      .replicas(4)
      .minWorkers(2)
      .gang(60)
      .condition("Created", "True", "TrainingJobCreated")
      .status({ startTime: stamp(0), replicas: 4, trainingReplicas: 3 });
  const unschedulable = "0/3 nodes are available: 3 Insufficient cpu.";
  const rows: Row[] = [
    {
      name: "until its minimum set is scheduled, a job waits (Admitted False WaitingForGang) naming each pod not scheduled yet, and is looked at again at the deadline",
      given: observed(gangJob())
        .service()
        .pods(
          pod(mnist, "coordinator"),
          pod(mnist, "parameter-server", 0).unschedulable(unschedulable),
          pod(mnist, "worker", 0).scheduled(),
          pod(mnist, "worker", 1).phase("Pending"),
          pod(mnist, "worker", 2),
          pod(mnist, "worker", 3),
        ),
      options: { statusPollMs: 120_000 },
      events: [
        [
          "Normal",
          "WaitingForGang",
          `3 of 5 pods of the minimum set are scheduled; not yet: mnist-ps-0 (Unschedulable: ${unschedulable}), mnist-worker-1 (pending); the job fails at 2025-06-01T12:01:00Z`,
        ],
      ],
      conditions: { Created: created, Admitted: ["False", "WaitingForGang"] },
      phase: "Created",
      requeueAfterMs: 60_000,
    },
    {
      name: "the wait counts from when it began: later passes look again at the same deadline",
      given: observed(gangJob().condition("Admitted", "False", "WaitingForGang"))
        .service()
        .pods(
          pod(mnist, "coordinator"),
          pod(mnist, "parameter-server", 0).unschedulable(unschedulable),
          pod(mnist, "worker", 0),
          pod(mnist, "worker", 1),
          pod(mnist, "worker", 2),
          pod(mnist, "worker", 3),
        )
        .at(45),
      options: { statusPollMs: 120_000 },
      conditions: { Created: created, Admitted: ["False", "WaitingForGang"] },
      phase: "Created",
      requeueAfterMs: 15_000,
    },
    {
      name: "once every pod of the minimum set is scheduled the job is Admitted (GangScheduled), even while a worker beyond it waits for a node",
      given: observed(gangJob().condition("Admitted", "False", "WaitingForGang"))
        .service()
        .pods(
          pod(mnist, "coordinator"),
          pod(mnist, "parameter-server", 0).scheduled(),
          pod(mnist, "worker", 0),
          pod(mnist, "worker", 1).scheduled(),
          pod(mnist, "worker", 2),
          pod(mnist, "worker", 3).unschedulable(unschedulable),
        )
        .at(45),
      events: [["Normal", "GangScheduled", "all 5 pods of the minimum set are scheduled"]],
      conditions: { Created: created, Admitted: ["True", "GangScheduled"] },
      phase: "Admitted",
      requeueAfterMs: 5000,
    },
    {
      name: "a gang not scheduled by scheduling.gang.timeoutSeconds fails (GangTimeout) naming what is missing, creates nothing, and releases its pods at once",
      given: observed(gangJob().condition("Admitted", "False", "WaitingForGang"))
        .pods(
          pod(mnist, "coordinator"),
          pod(mnist, "parameter-server", 0).unschedulable(unschedulable),
          pod(mnist, "worker", 0).scheduled(),
        )
        .at(60),
      deletePods: ["mnist-coordinator", "mnist-ps-0", "mnist-worker-0"],
      events: [
        [
          "Warning",
          "GangTimeout",
          `2 of 5 pods of the minimum set are scheduled; not yet: mnist-ps-0 (Unschedulable: ${unschedulable}), mnist-worker-1 (not created yet), mnist-worker-2 (not created yet); scheduling.gang.timeoutSeconds (60) passed`,
        ],
      ],
      conditions: { Created: created, Admitted: ["False", "WaitingForGang"], Failed: ["True", "GangTimeout"] },
      phase: "Failed",
      status: { completionTime: stamp(60) },
    },
    {
      name: "an admitted job stays admitted: a pod of its set that later waits for a node changes nothing",
      given: observed(job().gang(60).running())
        .service()
        .pods(
          pod(mnist, "coordinator"),
          pod(mnist, "parameter-server", 0).unschedulable(unschedulable),
          pod(mnist, "worker", 0),
          pod(mnist, "worker", 1),
        )
        .coordinator(coordinatorStatus(JobPhase.RUNNING).training(2))
        .at(600),
      conditions: { Created: created, Admitted: admitted, Running: training },
      phase: "Running",
      requeueAfterMs: 5000,
    },
  ];
  for (const row of rows) it(row.name, () => check(row));
});

describe("reconcile: a spec the coordinator would refuse", () => {
  // The CRD allows both; the coordinator refuses periodic checkpoints in async mode.
  const refused = { training: { mode: "async" }, checkpoints: { claimName: "ckpt", everySteps: 100 } };
  const rows: Row[] = [
    {
      name: "a new job its coordinator would refuse fails at once (InvalidSpec) naming the TrainingJob field, and nothing is created",
      given: observed(job().spec(refused)),
      events: [
        ["Normal", "TrainingJobCreated"],
        [
          "Warning",
          "InvalidSpec",
          /^spec\.checkpoints\.everySteps: async mode takes no periodic checkpoints.*; fix the TrainingJob and create it again$/,
        ],
      ],
      conditions: { Created: created, Failed: ["True", "InvalidSpec"] },
      phase: "Failed",
      status: { completionTime: stamp(0) },
      without: ["startTime", "trainingReplicas"],
    },
    {
      name: "the spec is checked only before the job first starts: a job with trainingReplicas is not refused",
      given: steady(job().spec(refused).running()),
      conditions: { Created: created, Admitted: admitted, Running: training },
      phase: "Running",
      requeueAfterMs: 5000,
    },
  ];
  for (const row of rows) it(row.name, () => check(row));
});

describe("reconcile: the status is patched only when it changed", () => {
  const rows: Row[] = [
    {
      name: "a pass that finds what the last pass wrote patches no status and records no Event",
      given: steady(job().running().status(written(steady()))).at(60),
      statusUnchanged: true,
      requeueAfterMs: 5000,
    },
    {
      name: "a pass where only the coordinator's progress moved patches the status, records no Event, and keeps each condition's lastTransitionTime",
      given: steady(job().running().status(written(steady())))
        .coordinator(coordinatorStatus(JobPhase.RUNNING).progress(1, 3, 80, 300).training(2))
        .at(60),
      conditions: { Created: created, Admitted: admitted, Running: training },
      phase: "Running",
      status: {
        step: 80,
        conditions: [
          { type: "Created", lastTransitionTime: stamp(0) },
          { type: "Admitted", lastTransitionTime: stamp(0) },
          { type: "Running", lastTransitionTime: stamp(0) },
        ],
      },
      requeueAfterMs: 5000,
    },
  ];
  for (const row of rows) it(row.name, () => check(row));
});

describe("reconcile: Kueue admission through the job's Workload (--kueue)", () => {
  const kueue = { kueue: true };
  const wl = workloadNameOf(mnist);
  const queued = () => job().queue("team-vision");
  /** A queued job that an earlier pass left waiting. */
  const waiting = () => queued().condition("Created", "True", "TrainingJobCreated").condition("Suspended", "True", "WaitingForQueue");
  const preempted = "Preempted to accommodate a workload (UID: 42) due to prioritization in the ClusterQueue";
  const toleration = { key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" };
  const a100 = resourceFlavor("a100", { "cloud.example.com/accelerator": "a100" }, [toleration]);
  const rows: Row[] = [
    {
      name: "a new job in a queue gets its Workload, and waits for Kueue with no pods (Suspended, WaitingForQueue)",
      given: observed(queued()),
      options: kueue,
      create: [`Workload/${wl}`],
      events: [
        ["Normal", "TrainingJobCreated", "TrainingJob mnist was accepted by the operator"],
        ["Normal", "WaitingForQueue", `waiting for Kueue to admit Workload ${wl} from LocalQueue team-vision`],
      ],
      conditions: { Created: created, Suspended: ["True", "WaitingForQueue"] },
      phase: "Suspended",
      without: ["startTime", "trainingReplicas"],
    },
    {
      name: "admitted: the pods are created (on the flavor's nodes), Suspended False Admitted",
      given: observed(waiting()).workload(workload(mnist).admitted("gpu-cluster", "a100")).flavors(a100),
      options: kueue,
      create: ["Service/mnist-coordinator", "NetworkPolicy/mnist-network", ...allPods(1, 2)],
      events: [
        ["Normal", "Admitted", `Kueue admitted Workload ${wl} to ClusterQueue gpu-cluster`],
        ["Normal", "Admitted", "gang admission is off: the job's pods are created at once"],
      ],
      conditions: { Created: created, Suspended: ["False", "Admitted"], Admitted: admitted },
      phase: "Admitted",
      status: { startTime: stamp(0), replicas: 2, trainingReplicas: 2 },
      requeueAfterMs: 5000,
    },
    {
      name: "admitted on a ResourceFlavor the operator has not read: the job keeps waiting, and says which",
      given: observed(waiting()).workload(workload(mnist).admitted("gpu-cluster", "a100")),
      options: kueue,
      conditions: { Created: created, Suspended: ["True", "WaitingForQueue"] },
      phase: "Suspended",
    },
    {
      name: "evicted while running: every pod is deleted (Suspended, Evicted), the admission stays while they run",
      given: observed(queued().running())
        .service()
        .pods(...runningPods(mnist, 1, 2))
        .workload(workload(mnist).admitted("gpu-cluster", "a100").evicted("Preempted", preempted))
        .flavors(a100),
      options: kueue,
      deletePods: ["mnist-coordinator", "mnist-ps-0", "mnist-worker-0", "mnist-worker-1"],
      events: [
        ["Normal", "Suspended"],
        ["Normal", "Suspended"],
        [
          "Normal",
          "Evicted",
          `Kueue evicted Workload ${wl} (Preempted): ${preempted}; the job is queued again once its pods are gone, and resumes from its newest checkpoint`,
        ],
      ],
      conditions: { Created: created, Admitted: ["False", "Suspended"], Running: ["False", "Suspended"], Suspended: ["True", "Evicted"] },
      phase: "Suspended",
      without: ["startTime"],
    },
    {
      name: "evicted, and no pod runs any more: the admission is cleared on the Workload's status",
      given: observed(queued().condition("Created", "True", "TrainingJobCreated").condition("Suspended", "True", "Evicted")).workload(
        workload(mnist).admitted("gpu-cluster", "a100").evicted("Preempted", preempted),
      ),
      options: kueue,
      workload: ["status"],
      conditions: { Created: created, Suspended: ["True", "Evicted"] },
      phase: "Suspended",
    },
    {
      name: "runPolicy.suspend of an admitted job: its pods are deleted and its Workload made inactive",
      given: observed(queued().running().suspend(true))
        .service()
        .pods(...runningPods(mnist, 1, 2))
        .workload(workload(mnist).admitted("gpu-cluster", "a100")),
      options: kueue,
      deletePods: ["mnist-coordinator", "mnist-ps-0", "mnist-worker-0", "mnist-worker-1"],
      workload: ["active=false"],
      events: [
        ["Normal", "Suspended"],
        ["Normal", "Suspended"],
        [
          "Normal",
          "Suspended",
          `runPolicy.suspend is true: the job's pods are deleted until it is false again; its Kueue Workload ${wl} is inactive (spec.active false): Kueue frees its quota`,
        ],
      ],
      conditions: { Created: created, Admitted: ["False", "Suspended"], Running: ["False", "Suspended"], Suspended: ["True", "Suspended"] },
      phase: "Suspended",
      without: ["startTime"],
    },
    {
      name: "resumed: the Workload is made active again, and the job waits for Kueue",
      given: observed(queued().condition("Created", "True", "TrainingJobCreated").condition("Suspended", "True", "Suspended")).workload(
        workload(mnist).inactive().pending("the workload is deactivated"),
      ),
      options: kueue,
      workload: ["active=true"],
      events: [["Normal", "WaitingForQueue"]],
      conditions: { Created: created, Suspended: ["True", "WaitingForQueue"] },
      phase: "Suspended",
    },
    {
      name: "more workers than Kueue admitted: the pods are stopped first (the Workload stays while they run)",
      given: observed(queued().running().replicas(3))
        .service()
        .pods(...runningPods(mnist, 1, 2))
        .workload(workload(mnist).admitted("gpu-cluster", "a100"))
        .flavors(a100),
      options: kueue,
      deletePods: ["mnist-coordinator", "mnist-ps-0", "mnist-worker-0", "mnist-worker-1"],
      events: [
        ["Normal", "Suspended"],
        ["Normal", "Suspended"],
        [
          "Normal",
          "WaitingForQueue",
          "3 workers wanted (spec.workers.replicas), more than the 2 Kueue admitted: the job is queued again at its new size, with a new Workload",
        ],
      ],
      conditions: {
        Created: created,
        Admitted: ["False", "Suspended"],
        Running: ["False", "Suspended"],
        Suspended: ["True", "WaitingForQueue"],
      },
      phase: "Suspended",
      without: ["startTime"],
    },
    {
      name: "more workers than Kueue admitted, and no pod runs: the Workload is deleted (the next pass makes one at the new size)",
      given: observed(waiting().replicas(3).status({ trainingReplicas: 2 })).workload(workload(mnist).admitted("gpu-cluster", "a100")),
      options: kueue,
      workload: ["delete"],
      conditions: { Created: created, Suspended: ["True", "WaitingForQueue"] },
      phase: "Suspended",
    },
    {
      name: "a finished job's Workload gets Finished True, so that Kueue frees its quota",
      given: observed(queued().finished("Succeeded", "Completed", 10))
        .workload(workload(mnist).admitted("gpu-cluster", "a100"))
        .at(10),
      options: kueue,
      workload: ["status"],
      conditions: { Created: created, Admitted: admitted, Running: ["False", "JobSucceeded"], Succeeded: ["True", "Completed"] },
      phase: "Succeeded",
    },
    {
      name: "a Workload already Finished is left alone",
      given: observed(queued().finished("Succeeded", "Completed", 10))
        .workload(workload(mnist).admitted("gpu-cluster", "a100").finished("Succeeded"))
        .at(10),
      options: kueue,
      conditions: { Created: created, Admitted: admitted, Running: ["False", "JobSucceeded"], Succeeded: ["True", "Completed"] },
      phase: "Succeeded",
    },
  ];
  for (const row of rows) it(row.name, () => check(row));

  it("the Workload: owned by the job, in its queue, one pod set per role with its count (none for colocated shards), templates of the pods", () => {
    const plan = reconcile(observed(queued().shards(2).replicas(3)).obj(), reconcileOptions(kueue));
    const made = plan.create[0] as Workload;
    expect(made.metadata).toMatchObject({
      name: wl,
      namespace: "ns",
      labels: { "app.kubernetes.io/managed-by": "trainfleet-operator", "trainfleet.dev/job-name": "mnist" },
      ownerReferences: [
        {
          apiVersion: "trainfleet.dev/v1alpha1",
          kind: "TrainingJob",
          name: "mnist",
          uid: "uid-mnist",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    });
    expect(made.spec.queueName).toBe("team-vision");
    expect(made.spec.active).toBe(true);
    expect(made.spec.podSets.map((podSet) => [podSet.name, podSet.count])).toEqual([
      ["coordinator", 1],
      ["parameter-server", 2],
      ["worker", 3],
    ]);
    for (const podSet of made.spec.podSets) {
      expect(Object.keys(podSet.template.metadata).sort()).toEqual(["labels"]);
      expect(podSet.template.metadata.labels).toEqual({
        "app.kubernetes.io/managed-by": "trainfleet-operator",
        "trainfleet.dev/job-name": "mnist",
        "trainfleet.dev/role": podSet.name,
      });
      expect(podSet.template.spec.containers[0]!.resources?.requests).toBeDefined();
    }
    const colocated = reconcile(observed(queued().colocated().replicas(3)).obj(), reconcileOptions(kueue)).create[0] as Workload;
    expect(colocated.spec.podSets.map((podSet) => [podSet.name, podSet.count])).toEqual([
      ["coordinator", 1],
      ["worker", 3],
    ]);
    // A job the user submitted suspended gets an inactive Workload: Kueue reserves nothing for it.
    const suspended = reconcile(observed(queued().suspend(true)).obj(), reconcileOptions(kueue)).create[0] as Workload;
    expect(suspended.spec.active).toBe(false);
  });

  it("waiting shows Kueue's own words when it says why it does not admit the Workload", () => {
    const reason = "couldn't assign flavors to pod set worker: insufficient unused quota for cpu in flavor a100, 2 more needed";
    const status = reconcile(observed(waiting()).workload(workload(mnist).pending(reason)).at(5).obj(), reconcileOptions(kueue)).status!;
    expect(status.conditions!.find((condition) => condition.type === "Suspended")!.message).toBe(
      `waiting for Kueue to admit Workload ${wl} from LocalQueue team-vision: ${reason}`,
    );
  });

  it("admitted pods get the flavor's node labels in their nodeSelector and its tolerations, and no queue label", () => {
    const given = observed(waiting()).workload(workload(mnist).admitted("gpu-cluster", "a100")).flavors(a100);
    const pods = reconcile(given.obj(), reconcileOptions(kueue)).create.filter((object) => object.kind === "Pod") as V1Pod[];
    expect(pods).toHaveLength(4);
    for (const created of pods) {
      expect(created.spec!.nodeSelector).toEqual({ "cloud.example.com/accelerator": "a100" });
      expect(created.spec!.tolerations).toEqual([toleration]);
      expect(created.metadata!.labels!["kueue.x-k8s.io/queue-name"]).toBeUndefined();
    }
  });

  it("the admission is cleared as a job framework does after an eviction: no admission, QuotaReserved False Pending with Kueue's message, Admitted False", () => {
    const given = observed(waiting()).workload(workload(mnist).admitted("gpu-cluster", "a100").evicted("Preempted", preempted)).at(30);
    const [change] = reconcile(given.obj(), reconcileOptions(kueue)).workload;
    expect(change).toMatchObject({ action: "patchStatus", name: wl, resourceVersion: "7" });
    const status = (change as Extract<WorkloadChange, { action: "patchStatus" }>).status;
    expect(status["admission"]).toBeNull();
    const conditions = status["conditions"] as {
      type: string;
      status: string;
      reason: string;
      message: string;
      lastTransitionTime: string;
    }[];
    expect(conditions.map((condition) => [condition.type, condition.status, condition.reason])).toEqual([
      ["QuotaReserved", "False", "Pending"],
      ["Admitted", "False", "NoReservation"],
      ["Evicted", "True", "Preempted"],
    ]);
    expect(conditions[0]!.message).toBe(preempted);
    expect(conditions[0]!.lastTransitionTime).toBe(stamp(30));
  });

  it("the Finished condition says how the job ended", () => {
    const given = observed(queued().finished("Failed", "BackoffLimitExceeded", 10))
      .workload(workload(mnist).admitted("gpu-cluster", "a100"))
      .at(10);
    const [change] = reconcile(given.obj(), reconcileOptions(kueue)).workload;
    const conditions = (change as Extract<WorkloadChange, { action: "patchStatus" }>).status["conditions"] as {
      type: string;
      status: string;
      reason: string;
    }[];
    expect(conditions.find((condition) => condition.type === "Finished")).toMatchObject({ status: "True", reason: "Failed" });
  });

  it("fewer workers than admitted: nothing to do with the Workload (its quota stays reserved at the admitted size)", () => {
    const given = observed(queued().running().replicas(1))
      .service()
      .pods(...runningPods(mnist, 1, 2))
      .workload(workload(mnist).admitted("gpu-cluster", "a100"))
      .flavors(a100);
    const plan = reconcile(given.obj(), reconcileOptions(kueue));
    expect(plan.deletePods.map((target) => target.name)).toEqual(["mnist-worker-1"]);
    expect(plan.workload).toEqual([]);
    expect(plan.create.filter((object) => object.kind === "Workload")).toEqual([]);
  });

  it("with the integration off, a job in a queue runs at once: its pods carry the queue label (Kueue's pod integration), and Created says so", () => {
    const plan = reconcile(observed(queued()).obj(), reconcileOptions());
    const pods = plan.create.filter((object) => object.kind === "Pod") as V1Pod[];
    expect(pods).toHaveLength(4);
    for (const created of pods) expect(created.metadata!.labels!["kueue.x-k8s.io/queue-name"]).toBe("team-vision");
    expect(plan.create.some((object) => object.kind === "Workload")).toBe(false);
    expect(plan.status!.conditions!.find((condition) => condition.type === "Created")!.message).toBe(
      "TrainingJob mnist was accepted by the operator; scheduling.queueName is team-vision but the operator runs without --kueue (chart value kueue.enabled): it makes no Workload, and the job's pods only carry the kueue.x-k8s.io/queue-name label, for Kueue's pod integration",
    );
  });
});
