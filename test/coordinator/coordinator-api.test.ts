/**
 * The coordinator's gRPC API over a real server on 127.0.0.1: job submission with
 * validation, membership errors, the lease that turns a silent member into a failed
 * job instead of a hang, and a worker's report of its own failure.
 */

import { Coordinator, startCoordinatorServer } from "@trainfleet/coordinator";
import type { RunningServer } from "@trainfleet/proto";
import { Code, CoordinatorService, createClient, JobPhase, JobService, MemberRole, TrainfleetError, WorkerState } from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import { rejection } from "@trainfleet/testing/rejection";
import { failureReportTimeoutMs, reportFailure, workerFailure } from "@trainfleet/worker/failure";
import { afterEach, describe, expect, it } from "vitest";

let server: RunningServer | undefined;
const clients: Array<{ close(): void }> = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await server?.close(500);
});

async function start(now: () => number = Date.now) {
  const coordinator = new Coordinator({ leaseMs: 1_000, logger: silentLogger, now });
  server = await startCoordinatorServer(coordinator, "127.0.0.1:0");
  const jobs = createClient(JobService, server.address);
  const members = createClient(CoordinatorService, server.address);
  clients.push(jobs, members);
  return { coordinator, jobs, members };
}

describe("JobService.SubmitJob", () => {
  it("rejects a malformed JobSpec with INVALID_ARGUMENT naming the field, and stays without a job", async () => {
    const { jobs } = await start();
    const error = await rejection(jobs.submitJob({ spec: { training: { batchSizePerWorker: 20_000 } } }));
    expect(error.code).toBe(Code.INVALID_ARGUMENT);
    expect(error.field).toBe("spec.training.batchSizePerWorker");
    expect(error.message).toBe("spec.training.batchSizePerWorker: 20000 must be between 1 and 10000");
    const missing = await rejection(jobs.submitJob({}));
    expect(missing.field).toBe("spec");
    const { status } = await jobs.getJob({});
    expect(status).toMatchObject({ jobId: "", phase: JobPhase.PENDING, reason: "WaitingForJob" });
  });

  it("accepts a good spec with defaults filled in, then refuses a second job", async () => {
    const { jobs } = await start();
    const accepted = await jobs.submitJob({ spec: { jobId: "first", workers: { replicas: 1 }, parameterServers: { shards: 1 } } });
    expect(accepted.spec?.training?.batchSizePerWorker).toBe(64);
    expect(accepted.status).toMatchObject({ jobId: "first", phase: JobPhase.PENDING, reason: "WaitingForMembers" });
    expect(accepted.status?.message).toBe("waiting for members: 0/1 parameter-server shards, 0/1 workers registered");
    const again = await rejection(jobs.submitJob({ spec: { jobId: "second" } }));
    expect(again.code).toBe(Code.ALREADY_EXISTS);
  });
});

describe("membership", () => {
  it("names the field when a registration or a heartbeat is wrong", async () => {
    const { jobs, members } = await start();
    await jobs.submitJob({ spec: { parameterServers: { shards: 2 } } });
    const role = await rejection(members.register({ host: "h" }));
    expect([role.code, role.field]).toEqual([Code.INVALID_ARGUMENT, "role"]);
    const shard = await rejection(members.register({ role: MemberRole.PARAMETER_SERVER, address: "127.0.0.1:1", shardIndex: 2 }));
    expect([shard.code, shard.field, shard.message]).toEqual([
      Code.INVALID_ARGUMENT,
      "shard_index",
      "shard_index: shard 2 does not exist: the job has shards 0..1",
    ]);
    await members.register({ role: MemberRole.PARAMETER_SERVER, address: "127.0.0.1:1", shardIndex: 0 });
    const twice = await rejection(members.register({ role: MemberRole.PARAMETER_SERVER, address: "127.0.0.1:2", shardIndex: 0 }));
    expect(twice.code).toBe(Code.ALREADY_EXISTS);
    const unknown = await rejection(members.heartbeat({ memberId: "worker-99" }));
    expect([unknown.code, unknown.field]).toEqual([Code.NOT_FOUND, "member_id"]);
  });

  it("marks a member that misses its lease lost (it must register again), and waits for its successor, saying so", async () => {
    let now = 1_000_000;
    const { coordinator, jobs, members } = await start(() => now);
    await jobs.submitJob({ spec: { workers: { replicas: 2 }, parameterServers: { shards: 1 } } });
    const shard = await members.register({ role: MemberRole.PARAMETER_SERVER, address: "127.0.0.1:1", shardIndex: 0 });
    const worker = await members.register({ role: MemberRole.WORKER, host: "h", backend: "cpu" });
    now += 600;
    await members.heartbeat({ memberId: worker.memberId });
    await members.heartbeat({ memberId: shard.memberId });
    now += 600;
    coordinator.checkLeases();
    expect(coordinator.status().workers.map((w) => w.state)).toEqual([WorkerState.REGISTERED]);
    now += 500;
    await members.heartbeat({ memberId: shard.memberId });
    coordinator.checkLeases();
    // The job waits for its workers again, with the lost one not counted.
    expect(coordinator.status()).toMatchObject({
      phase: JobPhase.PENDING,
      message: "waiting for members: 1/1 parameter-server shards, 0/2 workers registered",
    });
    expect(coordinator.status().workers.map((w) => w.state)).toEqual([WorkerState.LOST]);
    const evicted = await rejection(members.heartbeat({ memberId: worker.memberId }));
    expect([evicted.code, evicted.field, evicted.message]).toEqual([
      Code.NOT_FOUND,
      "member_id",
      "member_id: worker-0 was marked lost and left the job; register again to rejoin",
    ]);
    // The shard goes quiet too: a new shard process may take its index.
    now += 1_100;
    coordinator.checkLeases();
    expect(coordinator.status()).toMatchObject({
      phase: JobPhase.PENDING,
      message: "waiting for members: 0/1 parameter-server shards, 0/2 workers registered",
    });
    expect(coordinator.status().parameterServers.map((p) => p.state)).toEqual([WorkerState.LOST]);
    await members.register({ role: MemberRole.PARAMETER_SERVER, address: "127.0.0.1:2", shardIndex: 0 });
    expect(coordinator.status().message).toBe("waiting for members: 1/1 parameter-server shards, 0/2 workers registered");
  });
});

describe("CoordinatorService.ReportFailure", () => {
  it("names the field over gRPC: reason, host, an unknown worker_id; refuses once the job has ended", async () => {
    const { jobs, members } = await start();
    await jobs.submitJob({ spec: { workers: { replicas: 2 }, parameterServers: { shards: 1 } } });
    const reason = await rejection(members.reportFailure({ host: "h", reason: "no data" }));
    expect([reason.code, reason.field]).toEqual([Code.INVALID_ARGUMENT, "reason"]);
    const host = await rejection(members.reportFailure({ reason: "DataUnavailable" }));
    expect([host.code, host.field]).toEqual([Code.INVALID_ARGUMENT, "host"]);
    const unknown = await rejection(members.reportFailure({ workerId: "worker-7", reason: "WorkerError" }));
    expect([unknown.code, unknown.field]).toEqual([Code.NOT_FOUND, "worker_id"]);
    await members.reportFailure({ host: "a", reason: "DataUnavailable", message: "no files" });
    await members.reportFailure({ host: "b", reason: "DataUnavailable", message: "no files" });
    expect((await jobs.getJob({})).status).toMatchObject({ phase: JobPhase.FAILED, reason: "WorkerFailed", workerFailures: 2 });
    const ended = await rejection(members.reportFailure({ host: "c", reason: "DataUnavailable" }));
    expect(ended.code).toBe(Code.FAILED_PRECONDITION);
  });

  it("the worker's report is best effort: a worker_id the coordinator does not know is reported again by host, and an unreachable coordinator only costs the deadline", async () => {
    const { jobs } = await start();
    await jobs.submitJob({ spec: { workers: { replicas: 2 }, parameterServers: { shards: 1 } } });
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (_fields: object, message: string) => void warnings.push(message), child: () => logger };
    const error = workerFailure("ModelError", new TrainfleetError(Code.INVALID_ARGUMENT, "layers: cannot build the model"));
    await reportFailure({ coordinator: server!.address, workerId: "worker-3", host: "pod-3", generation: 4, error, logger });
    const { status } = await jobs.getJob({});
    expect(status).toMatchObject({ phase: JobPhase.PENDING, workerFailures: 1 });
    expect(warnings).toEqual([]);
    // Nothing listens on port 1: the report gives up within its deadline, saying so, and does not throw.
    const started = Date.now();
    await reportFailure({ coordinator: "127.0.0.1:1", host: "pod-3", error, logger });
    expect(Date.now() - started).toBeLessThanOrEqual(failureReportTimeoutMs + 500);
    expect(warnings).toEqual(["could not report the failure to the coordinator"]);
  });
});
