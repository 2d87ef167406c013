/**
 * Fuzz of the TCP data channel: the frame parser alone against a plain model of the
 * format, and a real shard's data server (127.0.0.1) against junk: random bytes, frames
 * with damaged fields (lengths, types, dtypes, offsets, ranks, steps, generations, NaN and
 * infinite values), and valid pushes cut at every byte. The parser gives exactly the
 * model's frames however the bytes are split, and refuses only with RESOURCE_EXHAUSTED;
 * the shard answers only well-formed frames and typed errors, keeps its version,
 * parameters and optimizer state unless the bytes held a whole valid step, keeps its
 * committed chunks (the valid pushes after the junk make exactly the parameters of a shard
 * that never saw it), and still takes those pushes.
 */
import type { FrameHeader } from "@trainfleet/dataplane";
import { errorFromFrame, FrameParser, FrameType, frame } from "@trainfleet/dataplane";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { dataChannelJunk, junkBytes } from "@trainfleet/testing/fuzz/data-channel-junk";
import { fuzzAsync, fuzzParameters } from "@trainfleet/testing/fuzz/fuzz-parameters";
import type { FuzzedShard, VisibleShardState } from "@trainfleet/testing/fuzz/fuzzed-shard";
import { startFuzzedShard } from "@trainfleet/testing/fuzz/fuzzed-shard";
import type { ReplyFrames } from "@trainfleet/testing/fuzz/raw-frame-exchange";
import { exchangeRawFrames } from "@trainfleet/testing/fuzz/raw-frame-exchange";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeHeader, encodeHeader, headerBytes } from "../src/tcp/frames.js";

/** The frames of `bytes` by the format's definition: headers and payloads back to back, none over `max`. */
function modelFrames(bytes: Uint8Array, max: number): { frames: { header: FrameHeader; payload: Uint8Array }[]; tooLarge: boolean } {
  const frames = [];
  let at = 0;
  while (bytes.byteLength - at >= headerBytes) {
    const header = decodeHeader(bytes.subarray(at, at + headerBytes));
    if (header.payloadBytes > max) return { frames, tooLarge: true };
    if (bytes.byteLength - at - headerBytes < header.payloadBytes) break;
    frames.push({ header, payload: bytes.slice(at + headerBytes, at + headerBytes + header.payloadBytes) });
    at += headerBytes + header.payloadBytes;
  }
  return { frames, tooLarge: false };
}

/** Runs `deliver` on a fresh parser; the frames it gave and what it threw. */
function parse(max: number, deliver: (parser: FrameParser) => void) {
  const frames: { header: FrameHeader; payload: Uint8Array }[] = [];
  const parser = new FrameParser(
    { payloadTarget: (header) => new Uint8Array(header.payloadBytes), frame: (header, payload) => frames.push({ header, payload }) },
    max,
  );
  try {
    deliver(parser);
    return { frames, thrown: undefined };
  } catch (error) {
    return { frames, thrown: error };
  }
}

const headerFields = fc.record({
  type: fc.nat({ max: 255 }),
  dtype: fc.nat({ max: 255 }),
  rank: fc.nat({ max: 0xffffffff }),
  generation: fc.nat({ max: 0xffffffff }),
  step: fc.nat({ max: 0xffffffff }),
  offset: fc.double(),
  payloadBytes: fc.nat({ max: 0xffffffff }),
  code: fc.nat({ max: 0xffffffff }),
});

/** Frames with small payloads, sometimes a huge claimed length, and random bytes, back to back. */
const frameStream = fc
  .array(
    fc.oneof(
      {
        weight: 4,
        arbitrary: fc
          .tuple(headerFields, fc.uint8Array({ maxLength: 80 }))
          .map(([fields, payload]) =>
            Buffer.concat([encodeHeader({ ...fields, type: fields.type as FrameType, payloadBytes: payload.byteLength }), payload]),
          ),
      },
      { weight: 1, arbitrary: headerFields.map((fields) => encodeHeader({ ...fields, type: fields.type as FrameType })) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
    ),
    { maxLength: 8 },
  )
  .map((parts) => new Uint8Array(Buffer.concat(parts)));

describe("FrameParser", () => {
  const max = 64;

  it("asks where every frame's payload goes, an empty one's too, so that the receiver sees every header (found by fuzzing)", () => {
    const asked: number[] = [];
    const payloadTarget = (header: FrameHeader) => {
      asked.push(header.type);
      return new Uint8Array(header.payloadBytes);
    };
    const parser = new FrameParser({ payloadTarget, frame: () => {} }, max);
    parser.feed(Buffer.concat([frame({ type: FrameType.PUSH_CHUNK }), frame({ type: FrameType.PUSH_END })]));
    expect(asked).toEqual([FrameType.PUSH_CHUNK, FrameType.PUSH_END]);
  });

  it("encodes and decodes every header field exactly", () => {
    fc.assert(
      fc.property(headerFields, (fields) => {
        const header = { ...fields, type: fields.type as FrameType };
        expect(decodeHeader(encodeHeader(header))).toEqual(header);
      }),
      fuzzParameters({ numRuns: 2_000, timeLimitMs: 1_000 }),
    );
  });

  it("gives the model's frames however the bytes arrive, and refuses an oversize frame only with RESOURCE_EXHAUSTED", () => {
    fc.assert(
      fc.property(
        frameStream,
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 }),
        (bytes, splits, reads) => {
          const model = modelFrames(bytes, max);
          // 'data' events of any sizes.
          const cuts = [...new Set([0, ...splits.map((split) => split % (bytes.byteLength + 1)), bytes.byteLength])].sort((a, b) => a - b);
          const fed = parse(max, (parser) => cuts.slice(1).forEach((end, i) => parser.feed(bytes.subarray(cuts[i]!, end))));
          // A socket reading in place, `reads` bytes at most at a time.
          const inPlace = parse(max, (parser) => {
            for (let at = 0, i = 0; at < bytes.byteLength; i++) {
              const target = parser.nextBuffer();
              const count = Math.min(target.byteLength, reads[i % reads.length]!, bytes.byteLength - at);
              target.set(bytes.subarray(at, at + count));
              at += count;
              parser.advance(count);
            }
          });
          for (const result of [fed, inPlace]) {
            expect(result.frames).toEqual(model.frames);
            if (!model.tooLarge) expect(result.thrown).toBeUndefined();
            else {
              expect(result.thrown).toBeInstanceOf(TrainfleetError);
              expect((result.thrown as TrainfleetError).code).toBe(Code.RESOURCE_EXHAUSTED);
            }
          }
        },
      ),
      fuzzParameters({ numRuns: 2_000, timeLimitMs: 2_000 }),
    );
  });
});

/** Frames a shard may send: each a reply type, errors with a TrainfleetError's code and a JSON message. */
function expectWellFormed(replies: ReplyFrames): void {
  expect(replies.unreadable).toBeUndefined();
  for (const { header, payload } of replies.frames) {
    expect([FrameType.HELLO_OK, FrameType.PUSH_ACK, FrameType.PARAMS, FrameType.PULL_END, FrameType.ERROR]).toContain(header.type);
    if (header.type !== FrameType.ERROR) continue;
    const { message } = JSON.parse(Buffer.from(payload).toString("utf8")) as { message: string };
    // UNKNOWN or INTERNAL: the server threw something other than a TrainfleetError.
    expect([Code.UNKNOWN, Code.INTERNAL], message).not.toContain(header.code);
  }
}

describe("a shard's data channel", () => {
  let shard: FuzzedShard;
  /** The state after rank 0's and rank 1's valid pushes, on a shard that saw nothing else. */
  let reference: VisibleShardState;
  beforeAll(async () => {
    shard = await startFuzzedShard();
    shard.restart();
    shard.pushValid(0);
    shard.pushValid(1);
    reference = shard.visibleState();
  });
  afterAll(() => shard.close());

  /** Rank 1's valid push as frames: HELLO, the chunks, PUSH_END. */
  const validPushBytes = (values: (chunk: number, data: Uint8Array) => Uint8Array = (_, data) => data) => {
    const hello = Buffer.from(shard.harness.config.jobId);
    const parts = [frame({ type: FrameType.HELLO, payloadBytes: hello.byteLength }), hello];
    shard.chunks(1).forEach((chunk, i) => {
      const data = values(i, chunk.data);
      parts.push(
        frame({
          type: FrameType.PUSH_CHUNK,
          rank: 1,
          generation: shard.generation,
          step: 0,
          offset: Number(chunk.offset),
          payloadBytes: data.byteLength,
        }),
      );
      parts.push(Buffer.from(data));
    });
    parts.push(frame({ type: FrameType.PUSH_END, rank: 1 }));
    return new Uint8Array(Buffer.concat(parts));
  };

  it("answers junk with well-formed frames and typed errors, and keeps its state and committed chunks unless the junk held valid chunks", async () => {
    await fuzzAsync({ numRuns: 400, timeLimitMs: 5_000 }, fc.boolean(), dataChannelJunk, async (prelude, junk) => {
      shard.restart();
      if (prelude) shard.pushValid(0);
      const before = shard.visibleState();
      const { writes, mayChangeValues } = junkBytes(junk, shard);
      expectWellFormed(await exchangeRawFrames(shard.harness.data.address, writes));
      // Valid chunks in the junk carry the reference's values: only a whole valid step changes what shows.
      if (!mayChangeValues) expect([before, reference]).toContainEqual(shard.visibleState());
      for (const rank of prelude ? [1] : [0, 1]) shard.pushValid(rank);
      if (!mayChangeValues) expect(shard.visibleState()).toEqual(reference);
      else expect(shard.harness.shard.version).toBe(1);
    });
  });

  it("takes a valid push cut at any byte as far as its whole chunks go, and nothing of a cut chunk", async () => {
    const length = validPushBytes().byteLength;
    const lastChunkEnd = length - headerBytes;
    for (let cut = 0; cut <= length; cut++) {
      shard.restart();
      shard.pushValid(0);
      // For the generation of this run.
      const bytes = validPushBytes();
      const before = shard.visibleState();
      expectWellFormed(await exchangeRawFrames(shard.harness.data.address, [bytes.subarray(0, cut)]));
      expect(shard.visibleState(), `cut at byte ${cut}`).toEqual(cut >= lastChunkEnd ? reference : before);
      shard.pushValid(1);
      expect(shard.visibleState(), `cut at byte ${cut}`).toEqual(reference);
    }
  });

  it("takes nothing of a push whose chunk holds a NaN, sent whole or cut at any byte", async () => {
    const withNaN = () =>
      validPushBytes((chunk, data) => {
        if (chunk !== 2) return data;
        const values = new Float32Array(data.slice().buffer);
        values[5] = Number.NaN;
        return new Uint8Array(values.buffer);
      });
    const length = withNaN().byteLength;
    // Cut from the chunk with the NaN on: the two valid chunks before it are whole, and taken
    // until the NaN chunk is whole and refused, which rolls the push back.
    const nanChunk = length - headerBytes - 2 * (headerBytes + 256);
    const nanChunkEnd = nanChunk + headerBytes + 256;
    for (let cut = nanChunk; cut <= length; cut++) {
      shard.restart();
      shard.pushValid(0);
      const before = shard.visibleState();
      const replies = await exchangeRawFrames(shard.harness.data.address, [withNaN().subarray(0, cut)]);
      expectWellFormed(replies);
      if (cut === length) expect(replies.frames.map((reply) => reply.header.type)).toEqual([FrameType.HELLO_OK, FrameType.ERROR]);
      expect(shard.visibleState(), `cut at byte ${cut}`).toEqual(before);
      const ack = shard.pushValid(1);
      expect(ack.chunksDuplicate, `cut at byte ${cut}`).toBe(cut < nanChunkEnd ? 2 : 0);
      expect(shard.visibleState(), `cut at byte ${cut}`).toEqual(reference);
    }
  });

  describe("found by fuzzing", () => {
    it("refuses an empty PUSH_CHUNK with INVALID_ARGUMENT on data, as the gRPC service does, instead of acking it as nothing", async () => {
      shard.restart();
      const hello = Buffer.from(shard.harness.config.jobId);
      const replies = await exchangeRawFrames(shard.harness.data.address, [
        frame({ type: FrameType.HELLO, payloadBytes: hello.byteLength }),
        hello,
        frame({ type: FrameType.PUSH_CHUNK, rank: 1, generation: shard.generation, offset: 1000, payloadBytes: 0 }),
        frame({ type: FrameType.PUSH_END, rank: 1 }),
      ]);
      expect(replies.frames.map((reply) => reply.header.type)).toEqual([FrameType.HELLO_OK, FrameType.ERROR]);
      const error = errorFromFrame(replies.frames[1]!.header, replies.frames[1]!.payload);
      expect([error.code, error.field, error.message]).toEqual([
        Code.INVALID_ARGUMENT,
        "data",
        "data: the chunk at offset 1000 must hold 64 float32 values (256 bytes), got 0 bytes",
      ]);
    });
  });
});
