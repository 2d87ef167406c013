/**
 * Fuzz of a real coordinator's gRPC server (127.0.0.1, port 0) with raw bodies: valid
 * requests (with the ids of real members, so that they get past the first checks) with
 * fields set to odd values, the same damaged as bytes, and random bytes, sent to every method of CoordinatorService and JobService, in three
 * states of a job: none submitted, waiting for members, running. Every call gets a
 * refusal with a TrainfleetError's code (INVALID_ARGUMENT for a body that does not decode) or a reply
 * that decodes; a refused call leaves the job's status JSON and its revision exactly as
 * they were; the server answers GetJob afterwards. A call that was accepted and changed
 * the job (a new member, a failed job) starts the next run on a fresh coordinator.
 * Also the bus's decoder: damaged events are DATA_LOSS naming the subject.
 */
import type { DescMessage, DescMethod, MessageInitShape } from "@bufbuild/protobuf";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { RunningServer } from "@trainfleet/proto";
import {
  Code,
  CoordinatorService,
  createClient,
  JobEventKind,
  JobEventSchema,
  JobPhase,
  JobService,
  jobStatusToJson,
  MemberRole,
  StepMetricsSchema,
  TrainfleetError,
} from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import { bytesFrom, bytesRecipe, fuzzBytes } from "@trainfleet/testing/fuzz/byte-mutations";
import { fuzzAsync, fuzzParameters } from "@trainfleet/testing/fuzz/fuzz-parameters";
import { messageFrom, messageRecipe } from "@trainfleet/testing/fuzz/message-mutations";
import type { RawGrpcClient } from "@trainfleet/testing/fuzz/raw-grpc-client";
import { createRawGrpcClient, rawMethodPath, refusedAsUndecodable, refusedCleanly } from "@trainfleet/testing/fuzz/raw-grpc-client";
import { sampleMessages } from "@trainfleet/testing/fuzz/sample-messages";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { decodeBusMessage, encodeBusMessage, eventMessage } from "../src/events/event-subjects.js";
import { Coordinator } from "../src/job/coordinator.js";
import { startCoordinatorServer } from "../src/server/coordinator-server.js";

/** A coordinator whose clock stands still: its status changes only through calls. */
interface Served {
  coordinator: Coordinator;
  server: RunningServer;
  raw: RawGrpcClient;
  /** Ids of the members registered in setup, for requests that get past the first checks. */
  shardId: string;
  workerId: string;
  close(): Promise<void>;
}

type Scenario = "with no job" | "waiting for members" | "running a job";

const clock = () => 1_700_000_000_000;

async function serve(scenario: Scenario): Promise<Served> {
  const coordinator = new Coordinator({ leaseMs: 60_000, logger: silentLogger, now: clock });
  const server = await startCoordinatorServer(coordinator, "127.0.0.1:0");
  const raw = createRawGrpcClient(server.address);
  const served: Served = {
    coordinator,
    server,
    raw,
    shardId: "ps-0",
    workerId: "worker-0",
    async close() {
      raw.close();
      await server.close(100);
    },
  };
  if (scenario === "with no job") return served;
  const jobs = createClient(JobService, server.address);
  const members = createClient(CoordinatorService, server.address);
  try {
    const running = scenario === "running a job";
    await jobs.submitJob({
      spec: { jobId: "fuzz", workers: { replicas: running ? 1 : 3 }, parameterServers: { shards: running ? 1 : 2 } },
    });
    served.shardId = (await members.register({ role: MemberRole.PARAMETER_SERVER, address: "127.0.0.1:1", shardIndex: 0 })).memberId;
    served.workerId = (await members.register({ role: MemberRole.WORKER, host: "h", backend: "cpu" })).memberId;
    if (running) {
      await members.reportGeneration({ memberId: served.shardId, generation: 1, version: 0 });
      expect(coordinator.status().phase).toBe(JobPhase.RUNNING);
    }
  } finally {
    jobs.close();
    members.close();
  }
  return served;
}

/** Requests a real member or user would send, for the members of `served`. */
function realRequests(method: DescMethod, served: Served): Uint8Array[] {
  const { shardId, workerId } = served;
  const requests: Record<string, object[]> = {
    register: [
      { role: MemberRole.WORKER, host: "h2", backend: "cpu" },
      { role: MemberRole.PARAMETER_SERVER, address: "127.0.0.1:2", dataAddress: "127.0.0.1:3", shardIndex: 1 },
    ],
    heartbeat: [{ memberId: workerId }, { memberId: shardId, shardStats: { bytesIn: 10n, bytesOut: 20n } }],
    assignments: [{ memberId: workerId }, { memberId: shardId }],
    reportProgress: [
      { memberId: workerId, generation: 1, step: 0, loss: 0.5, samples: 64, computeMs: 3, communicateMs: 1, bytesRead: 10n },
    ],
    reportEvaluation: [{ memberId: workerId, generation: 1, samples: 10, correct: 5, lossSum: 3 }],
    reportCheckpoint: [{ memberId: shardId, generation: 1, version: 1, path: "/tmp/x", sha256: "ab".repeat(32), bytes: 10n }],
    reportGeneration: [{ memberId: shardId, generation: 1, version: 0 }],
    reportFailure: [{ workerId, host: "h", generation: 1, reason: "DataUnavailable", message: "no files" }],
    submitJob: [{ spec: { jobId: "other", workers: { replicas: 1 }, parameterServers: { shards: 1 } } }],
    getJob: [{}],
    watchJob: [{}],
  };
  return (requests[method.localName] ?? []).map((init) =>
    toBinary(method.input, create(method.input, init as MessageInitShape<DescMessage>)),
  );
}

/** What the job shows of itself: the status API's JSON and the revision that wakes its watchers. */
function visibleState(served: Served): { status: string; revision: number } {
  return { status: JSON.stringify(jobStatusToJson(served.coordinator.status())), revision: served.coordinator.revision };
}

/** A stream that has sent its first message has answered; one that sends nothing yet (a worker's assignments before the start) is still open at its deadline. */
async function call(served: Served, method: DescMethod, body: Uint8Array) {
  const path = rawMethodPath(method);
  if (method.methodKind === "server_streaming") return served.raw.serverStream(path, body, { maxReplies: 1, timeoutMs: 100 });
  return served.raw.unary(path, body);
}

const methods = [...CoordinatorService.methods, ...JobService.methods];
const scenarios: Scenario[] = ["with no job", "waiting for members", "running a job"];

let current: Served | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

/** A tag of field 0 with wire type 7: neither exists, so no message type decodes it. */
const undecodableBody = new Uint8Array([0x07]);

describe("a body that does not decode", () => {
  it("is refused by every method with INVALID_ARGUMENT naming the message type, changing nothing", async () => {
    current = await serve("running a job");
    for (const method of methods) {
      const before = visibleState(current);
      const reply = await call(current, method, undecodableBody);
      expect(refusedAsUndecodable(reply, method.input.typeName), `${method.name}: code ${reply.code}: ${reply.details}`).toBe(true);
      expect(visibleState(current)).toEqual(before);
    }
  });
});

describe.each(scenarios)("a coordinator %s", (scenario) => {
  it("refuses raw bodies to every method (odd fields, damaged bytes, random bytes) with a typed code, changing nothing, or answers with a reply that decodes", async () => {
    current = await serve(scenario);
    await fuzzAsync(
      { numRuns: 500, timeLimitMs: 4_000 },
      fc.constantFrom(...methods),
      fc.oneof(bytesRecipe(), messageRecipe),
      async (method, recipe) => {
        const served = current!;
        const seeds = [...realRequests(method, served), ...sampleMessages(method.input)];
        const ids = [served.shardId, served.workerId, "fuzz", "ps-1", "worker-1"];
        const body = "edits" in recipe ? messageFrom(recipe, method.input, seeds, ids) : bytesFrom(recipe, seeds);
        const before = visibleState(served);
        const reply = await call(served, method, body);
        const stillOpen = method.methodKind === "server_streaming" && reply.code === Code.DEADLINE_EXCEEDED;
        if (reply.code === Code.OK || stillOpen) {
          for (const message of reply.replies) expect(() => fromBinary(method.output, message)).not.toThrow();
          // Accepted: what it changed may still be settling (a stream's end loses its member), so the next run starts afresh.
          await served.close();
          current = await serve(scenario);
          return;
        }
        expect(refusedCleanly(reply), `${method.name}: code ${reply.code}: ${reply.details}`).toBe(true);
        expect(visibleState(served)).toEqual(before);
      },
    );
    // The server is still up and answers.
    const jobs = createClient(JobService, current.server.address);
    try {
      await expect(jobs.getJob({})).resolves.toHaveProperty("status");
    } finally {
      jobs.close();
    }
  });
});

describe("the bus decoder", () => {
  it("reads damaged and random events and metrics, or refuses them with DATA_LOSS naming the subject", () => {
    const event = encodeBusMessage(eventMessage(create(JobEventSchema, { jobId: "fuzz", kind: JobEventKind.SUBMITTED, message: "m" })));
    const seeds = [event, ...sampleMessages(JobEventSchema), ...sampleMessages(StepMetricsSchema)];
    const subjects = ["trainfleet.jobs.fuzz.events", "trainfleet.jobs.fuzz.metrics", "trainfleet.jobs.fuzz.other"];
    fc.assert(
      fc.property(fc.constantFrom(...subjects), fuzzBytes(seeds), (subject, bytes) => {
        try {
          const message = decodeBusMessage(subject, bytes);
          expect(message.subject).toBe(subject);
        } catch (error) {
          expect(error).toBeInstanceOf(TrainfleetError);
          expect((error as TrainfleetError).code).toBe(Code.DATA_LOSS);
          expect((error as TrainfleetError).message).toContain(subject);
        }
      }),
      fuzzParameters({ numRuns: 1_000, timeLimitMs: 1_500 }),
    );
  });
});
