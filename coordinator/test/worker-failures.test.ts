/**
 * Workers that report a fatal failure before exiting (ReportFailure), in the coordinator
 * driven in-process by fake members: the rule that fails the job (workers.replicas reports
 * with no step completed in between, reason WorkerFailed), a completed step resetting the
 * count, reports by host from workers that never registered, the worker lost at once with
 * its reason in its status, and the validation of the request.
 */
import { create } from "@bufbuild/protobuf";
import type { JobEvent, ReportFailureRequest } from "@trainfleet/proto";
import { Code, JobEventKind, JobPhase, JobSpecSchema, MemberRole, type TrainfleetError, WorkerState } from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import { resolveJobSpec } from "@trainfleet/spec";
import { describe, expect, it } from "vitest";
import { Coordinator } from "../src/job/coordinator.js";
import type { AssignmentInit } from "../src/membership/members.js";
import { maxFailureMessageChars, validateFailureReport, WorkerFailures } from "../src/membership/worker-failures.js";

type Kind = NonNullable<AssignmentInit["kind"]>;
type Of<C extends Kind["case"]> = Extract<Kind, { case: C }>["value"];

function jobSpec(replicas: number, minWorkers = 1): ResolvedJobSpec {
  return resolveJobSpec(
    create(JobSpecSchema, {
      jobId: "failing",
      workers: { replicas, minWorkers },
      parameterServers: { shards: 1 },
      training: { batchSizePerWorker: 100, epochs: 1 },
    }),
  );
}

/** A coordinator with one shard, and fake workers that read what it sends them. */
class Harness {
  readonly coordinator: Coordinator;
  readonly events: JobEvent[] = [];

  constructor(spec: ResolvedJobSpec) {
    // A bus that keeps what is published, in order.
    const bus = { publishEvent: (event: JobEvent) => void this.events.push(event), publishMetrics: () => {}, close: async () => {} };
    this.coordinator = new Coordinator({ spec, leaseMs: 60_000, logger: silentLogger, events: bus });
    this.coordinator.register({ role: MemberRole.PARAMETER_SERVER, address: "127.0.0.1:1", shardIndex: 0 } as never);
  }

  worker(host: string): string {
    return this.coordinator.register({ role: MemberRole.WORKER, host, backend: "cpu" } as never).memberId;
  }

  async take(memberId: string): Promise<Kind[]> {
    const items: Kind[] = [];
    for await (const item of this.coordinator.assignments(memberId, AbortSignal.abort())) items.push(item.kind as Kind);
    return items;
  }

  /** The shard answers the newest generation at `version`: the generation opens. */
  async shardAt(version: number): Promise<void> {
    const shard = (await this.take("ps-0")).filter((k): k is Extract<Kind, { case: "shard" }> => k.case === "shard").at(-1)!.value;
    this.coordinator.reportGeneration({ memberId: "ps-0", generation: shard.generation!, version, error: "" } as never);
  }

  async steps(memberId: string): Promise<Array<Of<"step">>> {
    return (await this.take(memberId))
      .filter((k): k is Extract<Kind, { case: "step" }> => k.case === "step")
      .map((k) => k.value as Of<"step">);
  }

  fails(request: Partial<ReportFailureRequest>): void {
    this.coordinator.reportFailure({ workerId: "", host: "", generation: 0, reason: "", message: "", ...request } as ReportFailureRequest);
  }
}

function thrown(act: () => void): TrainfleetError {
  try {
    act();
  } catch (error) {
    return error as TrainfleetError;
  }
  throw new Error("expected an error");
}

const noData = "Fashion-MNIST not found. Searched:\n  /data (missing all four files)";

describe("the WorkerFailed rule", () => {
  it("fails the job once workers.replicas workers report a failure with no step between, quoting the last and counting them", async () => {
    const h = new Harness(jobSpec(2));
    const workers = [h.worker("a"), h.worker("b")];
    await h.shardAt(0);
    expect(h.coordinator.status()).toMatchObject({ phase: JobPhase.RUNNING, generation: 1 });
    h.fails({ workerId: workers[0]!, generation: 1, reason: "NonFiniteGradient", message: "the gradient of rank 0 for step 3 holds NaN" });
    // One failure of two: the worker is lost at once (a new generation goes on without it), the job runs.
    const status = h.coordinator.status();
    expect(status).toMatchObject({ phase: JobPhase.RUNNING, reason: "Rescaling", generation: 2, workerFailures: 1 });
    expect(status.workers.map((w) => [w.workerId, w.state, w.lastErrorReason, w.lastErrorMessage])).toEqual([
      ["worker-0", WorkerState.LOST, "NonFiniteGradient", "the gradient of rank 0 for step 3 holds NaN"],
      ["worker-1", WorkerState.TRAINING, "", ""],
    ]);
    expect((await h.take(workers[0]!)).at(-1)).toEqual({ case: "stop", value: { reason: "Evicted", rejoin: true } });
    h.fails({
      workerId: workers[1]!,
      generation: 2,
      reason: "NonFiniteGradient",
      message: "the gradient of rank 0 for step 3 holds Infinity",
    });
    const final = await h.coordinator.done();
    expect(final).toMatchObject({ phase: JobPhase.FAILED, reason: "WorkerFailed", generation: 2, workerFailures: 2 });
    expect(final.message).toBe(
      "workers keep failing: 2 fatal worker failures (NonFiniteGradient x2) and no step completed since the coordinator started, as many as workers.replicas (2); " +
        "the last, from worker worker-1 (host b): NonFiniteGradient: the gradient of rank 0 for step 3 holds Infinity",
    );
    expect(final.workers.map((w) => [w.workerId, w.state, w.lastErrorReason])).toEqual([
      ["worker-0", WorkerState.LOST, "NonFiniteGradient"],
      ["worker-1", WorkerState.LOST, "NonFiniteGradient"],
    ]);
    // No generation was begun for the last loss: the job ended there.
    expect(final.generation).toBe(2);
    const metrics = h.coordinator.metrics.render();
    expect(metrics).toContain('trainfleet_worker_failures_total{job_id="failing",reason="NonFiniteGradient"} 2');
    expect(metrics).toContain('trainfleet_member_evictions_total{job_id="failing",role="worker",cause="failed"} 2');
    const failed = h.events.filter((e) => e.kind === JobEventKind.MEMBER_FAILED);
    expect(failed.map((e) => [e.memberId, e.memberRole, e.message])).toEqual([
      [
        "worker-0",
        MemberRole.WORKER,
        "worker worker-0 (host a) failed in generation 1: NonFiniteGradient: the gradient of rank 0 for step 3 holds NaN",
      ],
      [
        "worker-1",
        MemberRole.WORKER,
        "worker worker-1 (host b) failed in generation 2: NonFiniteGradient: the gradient of rank 0 for step 3 holds Infinity",
      ],
    ]);
    expect(h.events.at(-1)).toMatchObject({ kind: JobEventKind.FINISHED, phase: JobPhase.FAILED, reason: "WorkerFailed" });
  });

  it("starts counting again after a completed step: one failure per step among many workers never fails the job", async () => {
    const h = new Harness(jobSpec(3));
    const workers = [h.worker("a"), h.worker("b"), h.worker("c")];
    await h.shardAt(0);
    h.fails({ workerId: workers[2]!, generation: 1, reason: "WorkerError", message: "out of memory" });
    expect(h.coordinator.status()).toMatchObject({ generation: 2, workerFailures: 1 });
    await h.shardAt(0);
    // The two left complete step 0: progress, so the count goes back to 0.
    for (const w of workers.slice(0, 2)) {
      const step = (await h.steps(w)).find((s) => s.generation === 2 && s.step === 0)!;
      h.coordinator.reportProgress({
        memberId: w,
        generation: 2,
        step: 0,
        loss: 1,
        samples: step.sampleIndices!.length,
        computeMs: 1,
        communicateMs: 1,
      } as never);
    }
    expect(h.coordinator.status()).toMatchObject({ phase: JobPhase.RUNNING, step: 1, workerFailures: 0 });
    // Two more failures now: 2 < 3 since the step, so the job goes on (paused with no worker left, not failed).
    h.fails({ workerId: workers[1]!, generation: 2, reason: "WorkerError", message: "out of memory" });
    h.fails({ host: "d", reason: "DataUnavailable", message: noData });
    expect(h.coordinator.status()).toMatchObject({ phase: JobPhase.RUNNING, workerFailures: 2 });
    h.fails({ workerId: workers[0]!, generation: 3, reason: "WorkerError", message: "out of memory" });
    const final = await h.coordinator.done();
    expect(final).toMatchObject({ phase: JobPhase.FAILED, reason: "WorkerFailed", step: 1, workerFailures: 3 });
    expect(final.message).toBe(
      "workers keep failing: 3 fatal worker failures (WorkerError x2, DataUnavailable x1) and no step completed since step 1, as many as workers.replicas (3); " +
        "the last, from worker worker-0 (host a): WorkerError: out of memory",
    );
  });

  it("counts reports by host from workers that never registered: every worker failing to load its data fails a pending job", async () => {
    const h = new Harness(jobSpec(2));
    h.fails({ host: "pod-worker-0", reason: "DataUnavailable", message: noData });
    let status = h.coordinator.status();
    expect(status).toMatchObject({ phase: JobPhase.PENDING, reason: "WaitingForMembers", workerFailures: 1, workers: [] });
    expect(h.events.at(-1)).toMatchObject({
      kind: JobEventKind.MEMBER_FAILED,
      memberId: "",
      memberRole: MemberRole.WORKER,
      rank: -1,
      message: `a worker on host pod-worker-0 that had not registered failed: DataUnavailable: ${noData}`,
    });
    // The same pod, made again by its operator, fails again.
    h.fails({ host: "pod-worker-0", reason: "DataUnavailable", message: noData });
    status = await h.coordinator.done();
    expect(status).toMatchObject({ phase: JobPhase.FAILED, reason: "WorkerFailed", workerFailures: 2 });
    expect(status.message).toBe(
      `workers keep failing: 2 fatal worker failures (DataUnavailable x2) and no step completed since the coordinator started, as many as workers.replicas (2); the last, from a worker on host pod-worker-0 that had not registered: DataUnavailable: ${noData}`,
    );
    // The job's status is final: a late report is refused, and changes nothing.
    const late = thrown(() => h.fails({ host: "pod-worker-1", reason: "DataUnavailable" }));
    expect([late.code, late.message]).toEqual([Code.FAILED_PRECONDITION, "the job has ended (FAILED); its status is final"]);
    expect(h.coordinator.status().workerFailures).toBe(2);
  });

  it("fails a job paused below min_workers when the replacement fails each time, instead of waiting out the pause", async () => {
    const h = new Harness(jobSpec(2, 2));
    const workers = [h.worker("a"), h.worker("b")];
    await h.shardAt(0);
    h.coordinator.streamClosed(workers[1]!);
    expect(h.coordinator.status()).toMatchObject({ phase: JobPhase.PAUSED, reason: "NotEnoughWorkers", workerFailures: 0 });
    const replacement = h.worker("b");
    h.fails({ workerId: replacement, reason: "ModelError", message: "cannot build the model" });
    expect(h.coordinator.status()).toMatchObject({ phase: JobPhase.PAUSED, workerFailures: 1 });
    h.fails({ host: "b", reason: "DataUnavailable", message: noData });
    expect(await h.coordinator.done()).toMatchObject({ phase: JobPhase.FAILED, reason: "WorkerFailed", workerFailures: 2 });
  });
});

describe("ReportFailure input", () => {
  it("names the field: reason missing or not CamelCase, neither worker_id nor host, an unknown worker_id, a shard's id", () => {
    const h = new Harness(jobSpec(2));
    const cases: Array<[Partial<ReportFailureRequest>, Code, string, string]> = [
      [
        { host: "h" },
        Code.INVALID_ARGUMENT,
        "reason",
        "reason: required: a CamelCase reason such as DataUnavailable, NonFiniteGradient or WorkerError",
      ],
      [
        { host: "h", reason: "data unavailable" },
        Code.INVALID_ARGUMENT,
        "reason",
        'reason: "data unavailable" is not a CamelCase reason of at most 64 characters (such as DataUnavailable)',
      ],
      [
        { host: "h", reason: `A${"b".repeat(64)}` },
        Code.INVALID_ARGUMENT,
        "reason",
        `reason: "A${"b".repeat(64)}" is not a CamelCase reason of at most 64 characters (such as DataUnavailable)`,
      ],
      [
        { reason: "WorkerError" },
        Code.INVALID_ARGUMENT,
        "host",
        "host: required when worker_id is empty: say which worker failed (a worker that never registered reports by host)",
      ],
      [
        { workerId: "worker-9", reason: "WorkerError" },
        Code.NOT_FOUND,
        "worker_id",
        'worker_id: "worker-9" is not a worker of this job; a worker that is not registered reports by host, with worker_id empty',
      ],
      [
        { workerId: "ps-0", reason: "WorkerError" },
        Code.INVALID_ARGUMENT,
        "worker_id",
        "worker_id: ps-0 is a parameter-server shard, not a worker",
      ],
    ];
    for (const [request, code, field, message] of cases) {
      const error = thrown(() => h.fails(request));
      expect({ request, code: error.code, field: error.field, message: error.message }).toEqual({ request, code, field, message });
    }
    // Nothing was counted.
    expect(h.coordinator.status()).toMatchObject({ phase: JobPhase.PENDING, workerFailures: 0 });
  });

  it("keeps at most 2048 characters of a message, saying how many were cut; takes a registered worker's host when none is given", () => {
    const long = "x".repeat(5000);
    const kept = validateFailureReport({ workerId: "", host: "h", generation: 0, reason: "WorkerError", message: long }).message;
    expect(kept.length).toBe(maxFailureMessageChars);
    // 2022 characters kept, 2978 cut, and the note says so.
    expect(kept).toBe(`${"x".repeat(2022)} [... 2978 characters cut]`);
    expect(
      validateFailureReport({ workerId: "", host: "h", generation: 0, reason: "WorkerError", message: "x".repeat(2048) }).message,
    ).toBe("x".repeat(2048));
    const h = new Harness(jobSpec(3));
    const worker = h.worker("node-7");
    h.fails({ workerId: worker, reason: "WorkerError", message: long });
    const status = h.coordinator.status();
    expect(status.workers[0]!.lastErrorMessage).toBe(kept);
    expect(h.events.find((e) => e.kind === JobEventKind.MEMBER_FAILED)!.message).toMatch(
      /^worker worker-0 \(host node-7\) failed: WorkerError: x+ \[\.\.\. 2978 characters cut\]$/,
    );
  });
});

describe("WorkerFailures", () => {
  const failure = (reason: string) => ({ workerId: "", host: "h", generation: 0, reason, message: "" });

  it("gives a verdict at replicas reports since the last progress, and none before", () => {
    const table: Array<{ replicas: number; reports: string[]; progressAfter?: number; verdict: string | undefined }> = [
      { replicas: 1, reports: [], verdict: undefined },
      {
        replicas: 1,
        reports: ["A"],
        verdict:
          "workers keep failing: 1 fatal worker failure (A x1) and no step completed since the coordinator started, as many as workers.replicas (1); the last, from a worker on host h that had not registered: A",
      },
      { replicas: 3, reports: ["A", "B"], verdict: undefined },
      { replicas: 2, reports: ["A", "B"], progressAfter: 1, verdict: undefined },
      {
        replicas: 2,
        reports: ["A", "B", "B", "C"],
        progressAfter: 1,
        verdict:
          "workers keep failing: 2 fatal worker failures (B x1, C x1) and no step completed since step 7, as many as workers.replicas (2); the last, from a worker on host h that had not registered: C",
      },
    ];
    for (const row of table) {
      const failures = new WorkerFailures();
      row.reports.forEach((reason, index) => {
        failures.record(failure(reason));
        if (index === row.progressAfter) failures.progressed(7);
      });
      expect({ ...row, got: failures.verdict(row.replicas) }).toEqual({ ...row, got: row.verdict });
    }
  });
});
