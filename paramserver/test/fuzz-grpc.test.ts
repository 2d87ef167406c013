/**
 * Fuzz of a real shard's gRPC service (ParameterServerService on 127.0.0.1) with raw
 * bodies: Push streams of one to three PushRequests with odd fields, damaged or random
 * bytes, and Pull requests the same way, in sync and in async mode, with or without rank 0's push of the step already in.
 * A refused call answers with a TrainfleetError's code (INVALID_ARGUMENT for a body that
 * does not decode) and changes nothing: the version, the parameters and the optimizer state are bit
 * for bit as before, and so are the committed chunks, which the valid pushes that follow
 * show (none of their chunks is a duplicate, and the parameters they make are those of a
 * shard that never saw the fuzz). A pull changes nothing whatever it gets. Each run starts
 * the step afresh at a new generation (fuzzed-shard.ts).
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ParameterServerService } from "@trainfleet/proto";
import { bytesFrom, bytesRecipe } from "@trainfleet/testing/fuzz/byte-mutations";
import { fuzzAsync } from "@trainfleet/testing/fuzz/fuzz-parameters";
import type { FuzzedShard, VisibleShardState } from "@trainfleet/testing/fuzz/fuzzed-shard";
import { startFuzzedShard } from "@trainfleet/testing/fuzz/fuzzed-shard";
import { messageFrom, messageRecipe } from "@trainfleet/testing/fuzz/message-mutations";
import type { RawGrpcClient } from "@trainfleet/testing/fuzz/raw-grpc-client";
import { createRawGrpcClient, rawMethodPath, refusedAsUndecodable, refusedCleanly } from "@trainfleet/testing/fuzz/raw-grpc-client";
import { sampleMessages } from "@trainfleet/testing/fuzz/sample-messages";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

type Mode = "sync" | "async";

const pushMethod = ParameterServerService.method.push;
const pullMethod = ParameterServerService.method.pull;

/** The ranks whose pushes complete the step after the prelude (rank 0's push, or none). */
const remainingRanks = (prelude: boolean) => (prelude ? [1] : [0, 1]);

/** `valid` four times in five, else one of `others`: most requests then have one field wrong. */
function mostly<T>(valid: T, others: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return fc.oneof({ weight: 4, arbitrary: fc.constant(valid) }, { weight: 1, arbitrary: others });
}

/**
 * A PushRequest that decodes, each field valid or not: what reaches the shard's own checks,
 * past the decoder that refuses most damaged bytes. What depends on the run (the
 * generation, the chunk keys) is filled in as it starts.
 */
const pushFields = fc.record({
  jobId: mostly<string | undefined>(undefined, fc.string({ maxLength: 8 })),
  generation: mostly<"current" | "previous" | "next" | number>(
    "current",
    fc.constantFrom<"previous" | "next" | number>("previous", "next", 0, 0xffffffff),
  ),
  step: mostly(0, fc.constantFrom(1, 2, 0xffffffff)),
  rank: mostly(1, fc.constantFrom(0, 2, 0xffffffff)),
  chunk: fc.nat({ max: 3 }),
  /** Added to the chunk's key. */
  offset: mostly(0, fc.constantFrom(1, -1, -64, 256, 2 ** 40)),
  data: mostly<{ value: number; at: number } | { bytes: number } | undefined>(
    undefined,
    fc.oneof(
      fc.record({
        at: fc.nat({ max: 63 }),
        value: fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 3.4e38, -0),
      }),
      fc.record({ bytes: fc.integer({ min: -256, max: 64 }).filter((bytes) => bytes !== 0) }),
    ),
  ),
});

function pushRequestFrom(fields: PushFields, shard: FuzzedShard): Uint8Array {
  const { generation } = shard;
  const valid = shard.chunks(Math.min(fields.rank, 1))[fields.chunk]!;
  let data = valid.data;
  if (fields.data !== undefined && "value" in fields.data) {
    const values = new Float32Array(data.slice().buffer);
    values[fields.data.at] = fields.data.value;
    data = new Uint8Array(values.buffer);
  } else if (fields.data !== undefined) {
    const { bytes } = fields.data;
    data = bytes < 0 ? data.slice(0, data.byteLength + bytes) : Uint8Array.from([...data, ...new Uint8Array(bytes)]);
  }
  const generations = { current: generation, previous: generation - 1, next: generation + 1 };
  const request = create(pushMethod.input, {
    jobId: fields.jobId ?? shard.harness.config.jobId,
    generation: typeof fields.generation === "number" ? fields.generation : generations[fields.generation],
    step: fields.step,
    rank: fields.rank,
    offset: valid.offset + BigInt(fields.offset),
    data,
  });
  return toBinary(pushMethod.input, request);
}

type PushFields = typeof pushFields extends fc.Arbitrary<infer T> ? T : never;

describe.each<Mode>(["sync", "async"])("a shard in %s mode", (mode) => {
  let shard: FuzzedShard;
  let raw: RawGrpcClient;
  /** The state after the prelude and the remaining valid pushes, on a shard that saw nothing else. */
  const reference = new Map<boolean, VisibleShardState>();
  beforeAll(async () => {
    shard = await startFuzzedShard(mode);
    raw = createRawGrpcClient(shard.harness.server.address);
    for (const prelude of [false, true]) {
      shard.restart();
      for (const rank of [...(prelude ? [0] : []), ...remainingRanks(prelude)]) shard.pushValid(rank);
      reference.set(prelude, shard.visibleState());
    }
  });
  afterAll(async () => {
    raw.close();
    await shard.close();
  });

  /** Valid bodies of both methods for the current generation: the seeds that damage starts from. */
  const validBodies = () => ({
    push: [
      ...sampleMessages(pushMethod.input),
      ...[0, 1].flatMap((rank) => shard.chunks(rank).map((chunk) => toBinary(pushMethod.input, chunk))),
    ],
    pull: [
      ...sampleMessages(pullMethod.input),
      ...[0, 1].map((minVersion) =>
        toBinary(pullMethod.input, create(pullMethod.input, { jobId: shard.harness.config.jobId, minVersion })),
      ),
    ],
  });

  it("refuses Push and Pull bodies that do not decode with INVALID_ARGUMENT naming the type, changing nothing", async () => {
    shard.restart();
    const before = shard.visibleState();
    const undecodable = new Uint8Array([0x07]); // field 0, wire type 7: neither exists
    const reply = await raw.clientStream(rawMethodPath(pushMethod), [undecodable]);
    expect(refusedAsUndecodable(reply, pushMethod.input.typeName), `code ${reply.code}: ${reply.details}`).toBe(true);
    const pull = await raw.serverStream(rawMethodPath(pullMethod), undecodable, { maxReplies: 1, timeoutMs: 1_000 });
    expect(refusedAsUndecodable(pull, pullMethod.input.typeName), `code ${pull.code}: ${pull.details}`).toBe(true);
    expect(shard.visibleState()).toEqual(before);
  });

  it("refuses raw damaged and random Push and Pull bodies with a typed code and changes nothing, committed chunks included", async () => {
    await fuzzAsync(
      { numRuns: 400, timeLimitMs: 4_000 },
      fc.boolean(),
      fc.oneof(
        fc.record({
          method: fc.constant("push" as const),
          bodies: fc.array(fc.oneof(bytesRecipe(256, 2), pushFields), { minLength: 1, maxLength: 3 }),
        }),
        fc.record({ method: fc.constant("pull" as const), bodies: fc.tuple(fc.oneof(bytesRecipe(256, 2), messageRecipe)) }),
      ),
      async (prelude, call) => {
        shard.restart();
        if (prelude) shard.pushValid(0);
        const before = shard.visibleState();
        const bodies = call.bodies.map((body) =>
          "jobId" in body
            ? pushRequestFrom(body, shard)
            : "edits" in body
              ? messageFrom(body, pullMethod.input, validBodies().pull, [shard.harness.config.jobId])
              : bytesFrom(body, validBodies()[call.method]),
        );
        const reply =
          call.method === "push"
            ? await raw.clientStream(rawMethodPath(pushMethod), bodies)
            : await raw.serverStream(rawMethodPath(pullMethod), bodies[0]!, { maxReplies: 64, timeoutMs: 100 });
        let accepted = 0;
        if (reply.code === Code.OK) {
          if (call.method === "push") accepted = fromBinary(pushMethod.output, reply.replies[0]!).chunksAccepted;
          else for (const message of reply.replies) expect(() => fromBinary(pullMethod.output, message)).not.toThrow();
        } else if (!(call.method === "pull" && reply.code === Code.DEADLINE_EXCEEDED)) {
          expect(refusedCleanly(reply), `${call.method}: code ${reply.code}: ${reply.details}`).toBe(true);
        }
        // An accepted chunk (a valid one, or one with other finite values) is a push like any other.
        if (accepted > 0) return;
        expect(shard.visibleState()).toEqual(before);
        const remaining = remainingRanks(prelude).map((rank) => shard.pushValid(rank));
        expect(remaining.map((ack) => ack.chunksDuplicate)).toEqual(remaining.map(() => 0));
        expect(shard.visibleState()).toEqual(reference.get(prelude));
      },
    );
  });
});
