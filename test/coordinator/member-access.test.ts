/**
 * The coordinator's member calls over mutual TLS, on a real gRPC server with a real job CA:
 * each call needs the role it names, and a member's calls must come from the identity
 * that registered it. Replayed from issue 14's attacks: a stranger without a certificate,
 * one of another job's CA, a worker registering as a shard, a shard replaced by another
 * shard's identity, a worker heartbeating and reporting progress as another, a forged
 * ReportGeneration and a forged ReportFailure. Each is refused and leaves the job's
 * membership as it was. A worker's own reports that come too early or too late for its
 * rank are skipped without ending its progress stream.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Coordinator, startCoordinatorServer } from "@trainfleet/coordinator";
import type { ClientOf, PeerIdentity, RunningServer, TransportSecurity } from "@trainfleet/proto";
import { Code, CoordinatorService, createClient, JobService, MemberRole } from "@trainfleet/proto";
import { createJobAuthority, readTransportSecurity, silentLogger, writeMemberCredentials } from "@trainfleet/runtime";
import { rejection } from "@trainfleet/testing/rejection";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const flags = { ca: "--tls-ca", certificate: "--tls-cert", key: "--tls-key" };
const names = ["coordinator", "ps-0", "ps-1", "worker-0", "worker-1", "run"] as const;
const roleOf = (name: string): PeerIdentity["role"] =>
  name === "coordinator" ? "coordinator" : name === "run" ? "operator" : name.startsWith("ps-") ? "parameter-server" : "worker";

let dir: string;
let server: RunningServer;
let coordinator: Coordinator;
const security = new Map<string, TransportSecurity>();
let stranger: TransportSecurity;
const clients: Array<{ close(): void }> = [];

function member(name: string, as = security.get(name)!): ClientOf<typeof CoordinatorService> {
  const client = createClient(CoordinatorService, server.address, { security: as, server: { roles: ["coordinator"] } });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "member-access-"));
  const authority = await createJobAuthority("secure-job");
  const files = await writeMemberCredentials(
    dir,
    authority,
    names.map((name) => ({ identity: { jobId: "secure-job", role: roleOf(name), name } })),
  );
  for (const name of names) security.set(name, await readTransportSecurity(files.get(name)!, flags));
  const other = await createJobAuthority("secure-job");
  const otherFiles = await writeMemberCredentials(join(dir, "other"), other, [
    { identity: { jobId: "secure-job", role: "worker", name: "worker-0" } },
  ]);
  stranger = await readTransportSecurity(otherFiles.get("worker-0")!, flags);

  coordinator = new Coordinator({ leaseMs: 60_000, logger: silentLogger });
  server = await startCoordinatorServer(coordinator, "127.0.0.1:0", { security: security.get("coordinator") });
  await createClient(JobService, server.address, { security: security.get("run")!, server: { roles: ["coordinator"] } }).submitJob({
    spec: { jobId: "secure-job", workers: { replicas: 2 }, parameterServers: { shards: 2 } },
  });
});

afterAll(async () => {
  for (const client of clients) client.close();
  await server?.close(0);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const membership = () => coordinator.status().message;

describe("member calls over mutual TLS", () => {
  let workerZero: string;
  let shardZero: string;

  it("let each member register as what its certificate names", async () => {
    workerZero = (await member("worker-0").register({ role: MemberRole.WORKER, host: "worker-0" })).memberId;
    shardZero = (await member("ps-0").register({ role: MemberRole.PARAMETER_SERVER, host: "ps-0", shardIndex: 0, address: "127.0.0.1:1" }))
      .memberId;
    await member("worker-0").heartbeat({ memberId: workerZero });
    expect(membership()).toBe("waiting for members: 1/2 parameter-server shards, 1/2 workers registered");
  });

  it("refuse a client without a certificate, and one of another job's CA, before any call", async () => {
    const plain = createClient(CoordinatorService, server.address);
    clients.push(plain);
    expect((await rejection(plain.register({ role: MemberRole.WORKER, host: "x" }, { timeoutMs: 5_000 }))).code).toBe(Code.UNAVAILABLE);
    const other = member("worker-0", stranger);
    expect((await rejection(other.heartbeat({ memberId: workerZero }, { timeoutMs: 5_000 }))).code).toBe(Code.UNAVAILABLE);
    expect(membership()).toBe("waiting for members: 1/2 parameter-server shards, 1/2 workers registered");
  });

  it("refuse a worker registering as a shard, and a shard registering as another shard or as a worker", async () => {
    const before = membership();
    const asShard = await rejection(
      member("worker-1").register({ role: MemberRole.PARAMETER_SERVER, host: "w", shardIndex: 1, address: "127.0.0.1:2" }),
    );
    expect([asShard.code, asShard.message]).toEqual([
      Code.PERMISSION_DENIED,
      "Register: the caller is a worker (worker-1), and Register takes a parameter-server",
    ]);
    const replace = await rejection(
      member("ps-1").register({ role: MemberRole.PARAMETER_SERVER, host: "p", shardIndex: 0, address: "127.0.0.1:3" }),
    );
    expect([replace.code, replace.message]).toEqual([
      Code.PERMISSION_DENIED,
      "Register: the caller is parameter-server ps-1, and only ps-0 may do this",
    ]);
    expect((await rejection(member("ps-1").register({ role: MemberRole.WORKER, host: "p" }))).code).toBe(Code.PERMISSION_DENIED);
    expect(membership()).toBe(before);
  });

  it("refuse a member speaking for another: heartbeat, progress, a shard's generation report, a failure report", async () => {
    const before = membership();
    const other = member("worker-1");
    for (const call of [
      other.heartbeat({ memberId: workerZero }),
      other.reportProgress([{ memberId: workerZero, generation: 1, step: 0, loss: 1e30 }]),
      other.reportGeneration({ memberId: shardZero, generation: 1, error: "forged" }),
      other.reportFailure({ workerId: workerZero, reason: "WorkerError", message: "forged" }),
      member("ps-1").reportGeneration({ memberId: shardZero, generation: 1, error: "forged" }),
    ]) {
      const error = await rejection(call);
      expect(error.code, error.message).toBe(Code.PERMISSION_DENIED);
      expect(error.message).toMatch(/may not speak for it$/);
    }
    // Before registering, a worker reports only under its own name.
    const host = await rejection(other.reportFailure({ host: "worker-0", reason: "WorkerError", message: "forged" }));
    expect([host.code, host.message]).toEqual([
      Code.PERMISSION_DENIED,
      'ReportFailure: worker worker-1 may report only its own failure, not host "worker-0"\'s',
    ]);
    // The coordinator's own identity is no member's either.
    expect((await rejection(member("coordinator").heartbeat({ memberId: workerZero }))).code).toBe(Code.PERMISSION_DENIED);
    expect(membership()).toBe(before);
    expect(coordinator.status().workers.map((w) => [w.workerId, w.lastErrorReason])).toEqual([[workerZero, ""]]);
  });

  it("skip a worker's own progress reports for steps it has no rank in (the job has not started), and keep its stream open", async () => {
    const before = membership();
    const reports = [0, 1, 2].map((step) => ({ memberId: workerZero, generation: 1, step, loss: 1, samples: 64 }));
    expect(await member("worker-0").reportProgress(reports)).toEqual(expect.objectContaining({}));
    expect(membership()).toBe(before);
  });

  it("let an operator (trainfleet run, the Kubernetes operator) report a worker's failure", async () => {
    await member("run").reportFailure({ workerId: workerZero, reason: "WorkerError", message: "exited with code 1" });
    expect(coordinator.status().workers.find((w) => w.workerId === workerZero)?.lastErrorReason).toBe("WorkerError");
  });

  it("keep JobService behind its tokens, and behind the CA: a member's certificate reaches it", async () => {
    const jobs = createClient(JobService, server.address, { security: security.get("run")!, server: { roles: ["coordinator"] } });
    clients.push(jobs);
    expect((await jobs.getJob({})).status?.jobId).toBe("secure-job");
  });
});
