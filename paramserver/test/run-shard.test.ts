/**
 * The shard process's side of a generation, against a scripted coordinator over real
 * gRPC: each ShardAssignment closes the shard and is answered with ReportGeneration and
 * the version held; open_generation opens it (going back a version if need be), and one
 * it cannot follow is answered with the error while the shard stays closed.
 */
import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { AssignmentsResponseSchema, CoordinatorService, JobSpecSchema, PushRequestSchema, addService, silentLogger, startServer } from "@trainfleet/proto";
import type { ReportGenerationRequest, RunningServer } from "@trainfleet/proto";
import { ParameterShard } from "../src/parameter-shard.js";
import { runShard } from "../src/run-shard.js";

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
  receive(): Promise<T> {
    const item = this.#items.shift();
    return item !== undefined ? Promise.resolve(item) : new Promise((resolve) => this.#waiters.push(resolve));
  }
}

const spec = create(JobSpecSchema, {
  jobId: "job-a",
  model: { kind: { case: "mlp", value: { hiddenUnits: [] } } },
  dataset: { name: "fashion-mnist" },
  training: { seed: 5, optimizer: { kind: { case: "adam", value: { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } } } },
  parameterServers: { shards: 1, chunkBytes: 1024 },
});
const range = { begin: 0n, end: 1000n };

function shardAssignment(generation: number, worldSize: number): Assignment {
  return { kind: { case: "shard", value: { spec, generation, worldSize, range, parameterCount: 7850n } } };
}

function openGeneration(generation: number, version: number): Assignment {
  return { kind: { case: "openGeneration", value: { generation, version } } };
}

/** A coordinator that hands out `assignments` as the test sends them and passes on each ReportGeneration. */
async function scriptedCoordinator(assignments: Channel<Assignment>, reports: Channel<ReportGenerationRequest>): Promise<RunningServer> {
  return startServer("127.0.0.1:0", (server, signal) =>
    addService(
      server,
      CoordinatorService,
      {
        register: async () => ({ memberId: "ps-0", jobId: "job-a", leaseMs: 60_000 }),
        heartbeat: async () => ({}),
        async *assignments() {
          for (;;) {
            const next = await assignments.receive();
            yield next;
            if (next.kind?.case === "stop") return;
          }
        },
        reportProgress: async () => ({}),
        reportEvaluation: async () => ({}),
        reportCheckpoint: async () => ({}),
        reportGeneration: async (request) => {
          reports.send(request);
          return {};
        },
      },
      signal,
    ),
  );
}

/** Rank 0's whole gradient for the shard's current step, pushed in process. */
function pushStep(shard: ParameterShard): void {
  const push = shard.beginPush();
  for (let offset = 0; offset < 1000; offset += 256) {
    const values = new Float32Array(Math.min(256, 1000 - offset)).fill(0.5);
    push.add(create(PushRequestSchema, { jobId: "job-a", generation: shard.generation, step: shard.version, rank: 0, offset: BigInt(offset), data: new Uint8Array(values.buffer) }));
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
    const coordinator = await scriptedCoordinator(assignments, reports);
    cleanup.push(() => coordinator.close(1_000));
    const stopping = new AbortController();
    const shard = new ParameterShard();
    const running = runShard({ coordinator: coordinator.address, listen: "127.0.0.1:0", shardIndex: 0, host: "127.0.0.1", logger: silentLogger, signal: stopping.signal, shard });
    cleanup.push(async () => {
      stopping.abort();
      await running.catch(() => undefined);
    });
    const never = new AbortController().signal;

    assignments.send(shardAssignment(1, 1));
    expect(await reports.receive()).toMatchObject({ memberId: "ps-0", generation: 1, version: 0, error: "" });
    expect(shard.phase).toBe("closed");
    assignments.send(openGeneration(1, 0));
    expect(await shard.waitForVersion("job-a", 0, never)).toEqual({ version: 0, generation: 1 });
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
    expect(await shard.waitForVersion("job-a", 0, never)).toEqual({ version: 0, generation: 2 });

    assignments.send({ kind: { case: "stop", value: { reason: "done" } } });
    await running;
  });
});
