/**
 * The shard process's side of a generation, against a scripted coordinator over real
 * gRPC: each ShardAssignment closes the shard and is answered with ReportGeneration and
 * the version held; open_generation opens it (going back a version if need be), and one
 * it cannot follow is answered with the error while the shard stays closed.
 *
 * And the coordinator going away: killed and started again on the same address, or
 * forgetting this member (a heartbeat answered NOT_FOUND), or a Stop that says to rejoin.
 * The same process, with the same servers, registers again and follows the new session:
 * a ShardAssignment with a restore (a checkpoint file, or an empty path for the initial
 * parameters) in a new generation restores the shard, which reports the restored version.
 *
 * And over mutual TLS: the shard registers with a coordinator that must show the job's
 * coordinator certificate, and serves a worker of the job on both data planes (plaintext
 * refused); a certificate that does not name its shard stops it at once.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { createParameterClient } from "@trainfleet/dataplane";
import type {
  PeerIdentity,
  RegisterRequest,
  ReportCheckpointRequest,
  ReportGenerationRequest,
  RunningServer,
  TransportSecurity,
} from "@trainfleet/proto";
import {
  type AssignmentsResponseSchema,
  addService,
  Code,
  CoordinatorService,
  DataPlane,
  JobSpecSchema,
  PushRequestSchema,
  type ShardRestoreSchema,
  startServer,
  TrainfleetError,
} from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { silentLogger } from "@trainfleet/runtime";
import { dataShape, initialParameters, parameterLayout } from "@trainfleet/spec";
import { makeJobCertificates } from "@trainfleet/testing/fixtures/job-certificates";
import { rejection } from "@trainfleet/testing/rejection";
import { afterEach, describe, expect, it } from "vitest";
import { ParameterShard } from "../src/parameter-shard.js";
import { runShard } from "../src/run-shard.js";
import { bits } from "./support.js";

type Assignment = MessageInitShape<typeof AssignmentsResponseSchema>;

/** Items handed over one at a time, each to the first who waits for one. */
class Channel<T> {
  readonly #items: T[] = [];
  readonly #waiters: Array<(item: T) => void> = [];
  send(item: T): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter(item);
    else this.#items.push(item);
  }
  /** The next item; rejects when `signal` aborts first (the item then goes to the next who waits). */
  receive(signal?: AbortSignal): Promise<T> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve, reject) => {
      const waiter = (next: T) => {
        signal?.removeEventListener("abort", onAbort);
        resolve(next);
      };
      const onAbort = () => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }
}

const spec = create(JobSpecSchema, {
  jobId: "job-a",
  model: { kind: { case: "mlp", value: { hiddenUnits: [] } } },
  dataset: { name: "fashion-mnist" },
  training: { seed: 5, optimizer: { kind: { case: "adam", value: { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } } } },
  workers: {},
  parameterServers: { shards: 1, chunkBytes: 1024 },
});
const range = { begin: 0n, end: 1000n };

function shardAssignment(
  generation: number,
  worldSize: number,
  more: { checkpointDir?: string; restore?: MessageInitShape<typeof ShardRestoreSchema> } = {},
): Assignment {
  return { kind: { case: "shard", value: { spec, generation, worldSize, range, parameterCount: 7850n, ...more } } };
}

function openGeneration(generation: number, version: number): Assignment {
  return { kind: { case: "openGeneration", value: { generation, version } } };
}

/** What a scripted coordinator is told and tells. */
interface Script {
  /** Handed out to the assignment stream open at the time, as the test sends them. */
  assignments: Channel<Assignment>;
  reports: Channel<ReportGenerationRequest>;
  registrations?: Channel<RegisterRequest>;
  checkpoints?: Channel<ReportCheckpointRequest>;
  /** The member id of each assignment stream that ended (a Stop, or the caller went away). */
  streamsEnded?: Channel<string>;
  /** Members whose heartbeats are answered NOT_FOUND, as for a member marked lost. */
  forgotten?: Set<string>;
  leaseMs?: number;
  /** Whom each registration's certificate named (over mutual TLS). */
  callers?: Channel<PeerIdentity | undefined>;
}

/**
 * A coordinator that registers members as ps-0, ps-0-2, ps-0-3..., hands out the
 * script's assignments as the test sends them, and passes on what it is told.
 */
async function scriptedCoordinator(script: Script, listen = "127.0.0.1:0", security?: TransportSecurity): Promise<RunningServer> {
  let registered = 0;
  return startServer(
    listen,
    (server, signal) =>
      addService(
        server,
        CoordinatorService,
        {
          register: async (request, context) => {
            registered++;
            script.callers?.send(context.identity);
            script.registrations?.send(request);
            return { memberId: registered === 1 ? "ps-0" : `ps-0-${registered}`, jobId: "job-a", leaseMs: script.leaseMs ?? 60_000 };
          },
          heartbeat: async ({ memberId }) => {
            if (script.forgotten?.has(memberId))
              throw new TrainfleetError(
                Code.NOT_FOUND,
                `member_id: ${memberId} was marked lost and left the job; register again to rejoin`,
              );
            return {};
          },
          async *assignments({ memberId }, context) {
            try {
              for (;;) {
                const next = await script.assignments.receive(context.signal);
                yield next;
                if (next.kind?.case === "stop") return;
              }
            } finally {
              script.streamsEnded?.send(memberId);
            }
          },
          reportProgress: async () => ({}),
          reportFailure: async () => ({}),
          reportEvaluation: async () => ({}),
          reportCheckpoint: async (request) => {
            script.checkpoints?.send(request);
            return {};
          },
          reportGeneration: async (request) => {
            script.reports.send(request);
            return {};
          },
        },
        signal,
      ),
    security,
  );
}

/** Rank 0's whole gradient for the shard's current step, pushed in process. */
function pushStep(shard: ParameterShard): void {
  const push = shard.beginPush();
  for (let offset = 0; offset < 1000; offset += 256) {
    const values = new Float32Array(Math.min(256, 1000 - offset)).fill(0.5);
    push.add(
      create(PushRequestSchema, {
        jobId: "job-a",
        generation: shard.generation,
        step: shard.version,
        rank: 0,
        offset: BigInt(offset),
        data: new Uint8Array(values.buffer),
      }),
    );
  }
  push.commit();
}

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of cleanup.splice(0)) await close();
});

describe("the shard process across generations", () => {
  it("reports the version it holds for each assignment, opens when told, and reports an open it cannot follow", async () => {
    const assignments = new Channel<Assignment>();
    const reports = new Channel<ReportGenerationRequest>();
    const coordinator = await scriptedCoordinator({ assignments, reports });
    cleanup.push(() => coordinator.close(1_000));
    const stopping = new AbortController();
    const shard = new ParameterShard();
    const running = runShard({
      coordinator: coordinator.address,
      listen: "127.0.0.1:0",
      shardIndex: 0,
      host: "127.0.0.1",
      logger: silentLogger,
      signal: stopping.signal,
      shard,
    });
    cleanup.push(async () => {
      stopping.abort();
      await running.catch(() => undefined);
    });
    const never = new AbortController().signal;

    assignments.send(shardAssignment(1, 1));
    expect(await reports.receive()).toMatchObject({ memberId: "ps-0", generation: 1, version: 0, error: "" });
    expect(shard.phase).toBe("closed");
    assignments.send(openGeneration(1, 0));
    expect(await shard.waitForVersion("job-a", 0, never)).toMatchObject({ version: 0, generation: 1 });
    pushStep(shard);
    expect(shard.version).toBe(1);

    // A new generation: the shard closes and says it holds version 1.
    assignments.send(shardAssignment(2, 1));
    expect(await reports.receive()).toMatchObject({ generation: 2, version: 1, error: "" });
    expect(shard.phase).toBe("closed");
    // An open it cannot follow is reported, and the shard stays closed.
    assignments.send(openGeneration(2, 3));
    const refused = await reports.receive();
    expect(refused).toMatchObject({ generation: 2, version: 1 });
    expect(refused.error).toMatch(/^cannot open generation 2 at version 3: this shard holds version 1/);
    expect(shard.phase).toBe("closed");
    // Another shard held version 0: this one goes back to it.
    assignments.send(openGeneration(2, 0));
    expect(await shard.waitForVersion("job-a", 0, never)).toMatchObject({ version: 0, generation: 2 });

    assignments.send({ kind: { case: "stop", value: { reason: "done" } } });
    await running;
  });
});

const never = new AbortController().signal;
const stop: Assignment = { kind: { case: "stop", value: { reason: "done" } } };

/** A logger that keeps the reason of each "registering again" warning. */
function reconnectLog(): { logger: Logger; reasons: string[] } {
  const reasons: string[] = [];
  const logger: Logger = {
    ...silentLogger,
    warn(fields, message) {
      if (message === "lost the coordinator; registering again") reasons.push((fields as { reason: string }).reason);
    },
    child: () => logger,
  };
  return { logger, reasons };
}

/** The shard process against `coordinator`, stopped after the test if it has not ended. */
function startShard(coordinator: string, shard: ParameterShard, logger: Logger = silentLogger): Promise<void> {
  const stopping = new AbortController();
  const running = runShard({
    coordinator,
    listen: "127.0.0.1:0",
    shardIndex: 0,
    host: "127.0.0.1",
    logger,
    signal: stopping.signal,
    shard,
  });
  cleanup.push(async () => {
    stopping.abort();
    await running.catch(() => undefined);
  });
  return running;
}

/** The shard's parameters and optimizer state, as bits. */
function stateBits(shard: ParameterShard) {
  return { parameters: bits(shard.parameters), state: shard.snapshot().state.map(bits) };
}

describe("the shard process when the coordinator goes away", () => {
  it("registers again by itself when the coordinator is killed and started again, and restores the checkpoint the new one names", async () => {
    const first = {
      assignments: new Channel<Assignment>(),
      reports: new Channel<ReportGenerationRequest>(),
      registrations: new Channel<RegisterRequest>(),
      checkpoints: new Channel<ReportCheckpointRequest>(),
    };
    const coordinator = await scriptedCoordinator(first);
    cleanup.push(() => coordinator.close(0));
    const shard = new ParameterShard();
    const log = reconnectLog();
    const running = startShard(coordinator.address, shard, log.logger);
    const registration = await first.registrations.receive();

    const checkpointDir = mkdtempSync(join(tmpdir(), "trainfleet-run-shard-"));
    first.assignments.send(shardAssignment(1, 1, { checkpointDir }));
    expect(await first.reports.receive()).toMatchObject({ generation: 1, version: 0, error: "" });
    first.assignments.send(openGeneration(1, 0));
    await shard.waitForVersion("job-a", 0, never);
    pushStep(shard);
    pushStep(shard);
    first.assignments.send({ kind: { case: "checkpoint", value: { version: 2 } } });
    const written = await first.checkpoints.receive();
    expect(written).toMatchObject({ memberId: "ps-0", version: 2, generation: 1, error: "" });
    const atVersion2 = stateBits(shard);
    pushStep(shard);
    expect(shard.version).toBe(3);

    // As SIGKILL: the coordinator goes at once, its streams cut; another starts on the same address.
    await coordinator.close(0);
    const second = {
      assignments: new Channel<Assignment>(),
      reports: new Channel<ReportGenerationRequest>(),
      registrations: new Channel<RegisterRequest>(),
    };
    const restarted = await scriptedCoordinator(second, coordinator.address);
    cleanup.push(() => restarted.close(1_000));
    // The same process, with the same servers, registers again; the shard kept its state meanwhile.
    expect(await second.registrations.receive()).toEqual(registration);
    expect(log.reasons).toEqual([expect.stringMatching(/^the assignment stream failed: /)]);
    expect([shard.version, shard.phase]).toEqual([3, "open"]);

    second.assignments.send(shardAssignment(3, 1, { checkpointDir, restore: { path: written.path, version: 2, sha256: written.sha256 } }));
    expect(await second.reports.receive()).toMatchObject({ memberId: "ps-0", generation: 3, version: 2, error: "" });
    expect(shard.phase).toBe("closed");
    expect(stateBits(shard)).toEqual(atVersion2);
    second.assignments.send(openGeneration(3, 2));
    expect(await shard.waitForVersion("job-a", 2, never)).toMatchObject({ version: 2, generation: 3 });
    pushStep(shard);
    expect(shard.version).toBe(3);

    second.assignments.send(stop);
    await running;
  });

  it("registers again when told to stop and rejoin, and when a heartbeat finds it forgotten; an empty restore path is the initial parameters", async () => {
    const script = {
      assignments: new Channel<Assignment>(),
      reports: new Channel<ReportGenerationRequest>(),
      registrations: new Channel<RegisterRequest>(),
      streamsEnded: new Channel<string>(),
      forgotten: new Set<string>(),
      // Heartbeats every 100 ms.
      leaseMs: 300,
    };
    const coordinator = await scriptedCoordinator(script);
    cleanup.push(() => coordinator.close(1_000));
    const shard = new ParameterShard();
    const log = reconnectLog();
    const running = startShard(coordinator.address, shard, log.logger);
    await script.registrations.receive();
    script.assignments.send(shardAssignment(1, 1));
    expect(await script.reports.receive()).toMatchObject({ memberId: "ps-0", generation: 1, version: 0 });
    script.assignments.send(openGeneration(1, 0));
    await shard.waitForVersion("job-a", 0, never);
    pushStep(shard);

    script.assignments.send({ kind: { case: "stop", value: { reason: "Evicted", rejoin: true } } });
    expect(await script.streamsEnded.receive()).toBe("ps-0");
    expect(await script.registrations.receive()).toMatchObject({ shardIndex: 0 });
    expect(log.reasons).toEqual(["told to stop (Evicted) and register again"]);
    script.assignments.send(shardAssignment(2, 1, { restore: { path: "", version: 0 } }));
    expect(await script.reports.receive()).toMatchObject({ memberId: "ps-0-2", generation: 2, version: 0, error: "" });
    const layout = parameterLayout(spec.model!, dataShape({ name: "fashion-mnist", manifest: "" }));
    expect(stateBits(shard)).toEqual({
      parameters: bits(initialParameters(layout, 5, 0, 1000)),
      state: [new Float32Array(1000), new Float32Array(1000)].map(bits),
    });
    script.assignments.send(openGeneration(2, 0));
    await shard.waitForVersion("job-a", 0, never);

    // Marked lost while its stream stays open: the next heartbeat says so, and the shard ends that stream and registers again.
    script.forgotten.add("ps-0-2");
    expect(await script.streamsEnded.receive()).toBe("ps-0-2");
    expect(await script.registrations.receive()).toMatchObject({ shardIndex: 0 });
    expect(log.reasons[1]).toBe(
      "the coordinator does not know this member: member_id: ps-0-2 was marked lost and left the job; register again to rejoin",
    );
    script.assignments.send(shardAssignment(3, 1));
    expect(await script.reports.receive()).toMatchObject({ memberId: "ps-0-3", generation: 3, version: 0, error: "" });

    script.assignments.send(stop);
    await running;
  });

  it("reports an empty restore path with a version other than 0, and ends", async () => {
    const script = { assignments: new Channel<Assignment>(), reports: new Channel<ReportGenerationRequest>() };
    const coordinator = await scriptedCoordinator(script);
    cleanup.push(() => coordinator.close(1_000));
    const running = startShard(coordinator.address, new ParameterShard());
    script.assignments.send(shardAssignment(1, 1, { restore: { path: "", version: 4 } }));
    const message =
      "restore.version: an empty restore.path means the job's initial parameters at version 0, not version 4; name the checkpoint file of version 4, or send version 0";
    expect(await script.reports.receive()).toMatchObject({ generation: 1, version: 0, error: message });
    await expect(running).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, message });
  });
});

describe("the shard process over mutual TLS", () => {
  it("registers with the coordinator as ps-0, both sides checked, and serves a worker of the job on both data planes", async () => {
    const job = await makeJobCertificates("job-a", [
      ["coordinator", "coordinator"],
      ["parameter-server", "ps-0"],
      ["worker", "worker-0"],
    ]);
    cleanup.push(() => job.close());
    const script = {
      assignments: new Channel<Assignment>(),
      reports: new Channel<ReportGenerationRequest>(),
      registrations: new Channel<RegisterRequest>(),
      callers: new Channel<PeerIdentity | undefined>(),
    };
    const coordinator = await scriptedCoordinator(script, "127.0.0.1:0", job.security("coordinator"));
    cleanup.push(() => coordinator.close(1_000));
    const shard = new ParameterShard();
    const stopping = new AbortController();
    const running = runShard({
      coordinator: coordinator.address,
      listen: "127.0.0.1:0",
      shardIndex: 0,
      host: "127.0.0.1",
      logger: silentLogger,
      signal: stopping.signal,
      shard,
      security: job.security("ps-0"),
    });
    cleanup.push(async () => {
      stopping.abort();
      await running.catch(() => undefined);
    });
    const registration = await script.registrations.receive();
    expect(await script.callers.receive()).toEqual({ jobId: "job-a", role: "parameter-server", name: "ps-0" });
    script.assignments.send(shardAssignment(1, 1));
    expect(await script.reports.receive()).toMatchObject({ memberId: "ps-0", generation: 1, version: 0, error: "" });
    script.assignments.send(openGeneration(1, 0));
    await shard.waitForVersion("job-a", 0, never);

    const endpoint = { index: 0, address: registration.address, dataAddress: registration.dataAddress, begin: 0, end: 1000 };
    const gradient = new Float32Array(1000).fill(0.5);
    const tcp = createParameterClient({
      jobId: "job-a",
      shards: [endpoint],
      chunkBytes: 1024,
      dataPlane: DataPlane.TCP,
      security: job.security("worker-0"),
    });
    const grpc = createParameterClient({ jobId: "job-a", shards: [endpoint], chunkBytes: 1024, security: job.security("worker-0") });
    cleanup.push(async () => {
      tcp.close();
      grpc.close();
    });
    const pulled = new Float32Array(1000);
    expect(await tcp.pushThenPull({ generation: 1, step: 0, rank: 0 }, gradient, pulled)).toBe(1);
    const again = new Float32Array(1000);
    expect(await grpc.pull(1, again)).toBe(1);
    expect(bits(again)).toEqual(bits(pulled));
    expect(bits(pulled)).toEqual(bits(shard.parameters));
    // Plaintext is refused on both.
    const plain = createParameterClient({ jobId: "job-a", shards: [endpoint], chunkBytes: 1024, dataPlane: DataPlane.TCP });
    cleanup.push(async () => plain.close());
    expect((await rejection(plain.pull(1, new Float32Array(1000), { timeoutMs: 5_000 }))).code).toBe(Code.UNAVAILABLE);

    script.assignments.send(stop);
    await running;
  });

  it("refuses to start with a certificate that does not name its shard", async () => {
    const job = await makeJobCertificates("job-a", [
      ["parameter-server", "ps-1"],
      ["worker", "worker-0"],
    ]);
    cleanup.push(() => job.close());
    for (const [name, problem] of [
      ["ps-1", "its certificate is parameter-server ps-1's, not ps-0's"],
      ["worker-0", "its certificate is a worker's (worker-0), and this needs a parameter-server"],
    ] as const) {
      const error = await rejection(
        runShard({
          coordinator: "127.0.0.1:1",
          listen: "127.0.0.1:0",
          shardIndex: 0,
          host: "127.0.0.1",
          logger: silentLogger,
          signal: never,
          security: job.security(name),
        }),
      );
      expect([error.code, error.message]).toEqual([Code.INVALID_ARGUMENT, `shard 0 cannot serve with this certificate: ${problem}`]);
    }
  });
});
