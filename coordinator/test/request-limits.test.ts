/**
 * Issue 14's oversized member messages and registration flood, over a real gRPC server: each
 * string field past its limit is refused with INVALID_ARGUMENT naming it before anything is
 * stored, and a job's member records stop at their bound, lost members pruned first.
 */
import { create } from "@bufbuild/protobuf";
import type { ClientOf, RunningServer } from "@trainfleet/proto";
import { Code, CoordinatorService, createClient, JobService, JobSpecSchema, MemberRole } from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import { rejection } from "@trainfleet/testing/rejection";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Coordinator } from "../src/job/coordinator.js";
import { maxMemberRecords } from "../src/membership/request-limits.js";
import { startCoordinatorServer } from "../src/server/coordinator-server.js";

let coordinator: Coordinator;
let server: RunningServer;
let client: ClientOf<typeof CoordinatorService>;
let jobs: ClientOf<typeof JobService>;

beforeAll(async () => {
  coordinator = new Coordinator({ leaseMs: 60_000, logger: silentLogger });
  server = await startCoordinatorServer(coordinator, "127.0.0.1:0");
  client = createClient(CoordinatorService, server.address);
  jobs = createClient(JobService, server.address);
  // Two workers at most and one shard: 4 x (2 + 1) + 16 = 28 member records.
  await jobs.submitJob({ spec: { jobId: "bounded", workers: { replicas: 2, maxWorkers: 2 }, parameterServers: { shards: 1 } } });
});

afterAll(async () => {
  client?.close();
  jobs?.close();
  await server?.close(0);
});

const workers = () => coordinator.status().workers.length;

describe("member messages", () => {
  it.each([
    ["host", { host: "h".repeat(254) }, "host: 254 characters; at most 253 are taken"],
    ["host (1 MiB)", { host: "h".repeat(1 << 20) }, `host: ${1 << 20} characters; at most 253 are taken`],
    ["backend", { backend: "b".repeat(65) }, "backend: 65 characters; at most 64 are taken"],
    ["address", { address: "a".repeat(262) }, "address: 262 characters; at most 261 are taken"],
    ["data_address", { dataAddress: "a".repeat(262) }, "data_address: 262 characters; at most 261 are taken"],
  ])("refuses a registration whose %s is too long, storing nothing", async (_, fields, message) => {
    const before = workers();
    const error = await rejection(client.register({ role: MemberRole.WORKER, host: "w", ...fields }));
    expect([error.code, error.message]).toEqual([Code.INVALID_ARGUMENT, message]);
    expect(workers()).toBe(before);
  });

  it("refuses an oversized member id on heartbeat and reports, and an oversized digest or error, naming the field", async () => {
    const long = "m".repeat(1 << 20);
    const cases: Array<[Promise<unknown>, string]> = [
      [client.heartbeat({ memberId: long }), `member_id: ${1 << 20} characters; at most 64 are taken`],
      [client.reportFailure({ workerId: long, reason: "WorkerError" }), `worker_id: ${1 << 20} characters; at most 64 are taken`],
      [client.reportCheckpoint({ memberId: "ps-0", sha256: "f".repeat(65) }), "sha256: 65 characters; at most 64 are taken"],
      [client.reportGeneration({ memberId: "ps-0", error: "e".repeat(5000) }), "error: 5000 characters; at most 4096 are taken"],
      [client.reportProgress([{ memberId: long }]), `member_id: ${1 << 20} characters; at most 64 are taken`],
    ];
    for (const [call, message] of cases) {
      const error = await rejection(call);
      expect([error.code, error.message]).toEqual([Code.INVALID_ARGUMENT, message]);
    }
  });
});

describe("member records per job", () => {
  it("stops at 4 x (maxWorkers + shards) + 16 live ones with RESOURCE_EXHAUSTED, and prunes a lost one, oldest first, to make room", async () => {
    const limit = maxMemberRecords(create(JobSpecSchema, { workers: { maxWorkers: 2 }, parameterServers: { shards: 1 } }));
    expect(limit).toBe(28);
    const ids: string[] = [];
    while (workers() < limit) ids.push((await client.register({ role: MemberRole.WORKER, host: `w${ids.length}` })).memberId);
    const refused = await rejection(client.register({ role: MemberRole.WORKER, host: "one-more" }));
    expect(refused.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(refused.message).toMatch(/^this job holds 28 live member records already/);
    expect(workers()).toBe(limit);
    // Its assignment stream closed before the start: that member is lost, and the oldest lost one goes first.
    coordinator.streamClosed(ids[3]!);
    coordinator.streamClosed(ids[1]!);
    const joined = await client.register({ role: MemberRole.WORKER, host: "after-loss" });
    const kept = coordinator.status().workers.map((worker) => worker.workerId);
    expect(kept).toHaveLength(limit);
    expect(kept).not.toContain(ids[1]);
    expect(kept).toContain(ids[3]);
    expect(kept).toContain(joined.memberId);
  });
});
