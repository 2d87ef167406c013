/**
 * Bytes for fuzzing a shard's TCP data channel (dataplane/src/tcp/frames.ts): a run of
 * pieces, each a frame the protocol knows with its fields valid or not (HELLO, PUSH_CHUNK
 * with the real gradient's values, damaged values, a wrong rank, generation, step, offset,
 * dtype or claimed length, PUSH_END, PULL), a frame of any type, or random bytes; then
 * maybe cut short, and handed to the socket in several writes. The values of a chunk
 * that is valid are the reference gradient's (fuzzed-shard.ts), so that a valid chunk the
 * shard takes changes nothing that the valid pushes after it would not; `mayChangeValues`
 * says when a piece was a valid chunk with other finite values, which a shard may take.
 */
import { encodeBfloat16Js, encodeFloat16Js, FrameType, frame } from "@trainfleet/dataplane";
import { maxChunkBytes, WireDtype } from "@trainfleet/proto";
import type { Arbitrary } from "fast-check";
import fc from "fast-check";
import type { FuzzedShard } from "./fuzzed-shard.js";

type Generation = "current" | "previous" | "next" | number;

export type JunkPiece =
  | { kind: "hello"; job: "right" | "other" | Uint8Array }
  | {
      kind: "chunk";
      rank: number;
      chunk: number;
      dtype: number;
      generation: Generation;
      step: number;
      /** Added to the chunk's key. */
      offset: number;
      values: "valid" | "other" | { at: number; value: number } | { length: number };
      /** Added to the payload's true length in the header. */
      claim: number;
    }
  | { kind: "end"; rank: number; step: number }
  | { kind: "pull"; dtype: number; minVersion: number }
  | { kind: "frame"; type: number; payload: Uint8Array }
  | { kind: "bytes"; bytes: Uint8Array };

export interface Junk {
  /** The HELLO first, as a client starts; most often for the shard's job. */
  hello: "right" | "other" | undefined;
  pieces: JunkPiece[];
  /** A PUSH_END last, so that the shard answers what it made of the chunks. */
  end: boolean;
  /** Cut the bytes at this fraction (of 1000) of their length; none: all are sent. */
  cut: number | undefined;
  /** Also split the writes at these fractions (of 1000). */
  splits: number[];
}

/** `valid` four times in five, else one of `others`. */
function mostly<T>(valid: T, others: Arbitrary<T>): Arbitrary<T> {
  return fc.oneof({ weight: 4, arbitrary: fc.constant(valid) }, { weight: 1, arbitrary: others });
}

const u32 = fc.constantFrom(2, 0x7fffffff, 0xffffffff);

const piece: Arbitrary<JunkPiece> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("hello" as const),
      job: mostly<"right" | "other" | Uint8Array>("right", fc.oneof(fc.constant("other" as const), fc.uint8Array({ maxLength: 16 }))),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("chunk" as const),
      rank: mostly(1, fc.oneof(fc.constant(0), u32)),
      chunk: fc.nat({ max: 3 }),
      dtype: mostly<number>(WireDtype.UNSPECIFIED, fc.constantFrom(WireDtype.FLOAT32, WireDtype.BFLOAT16, WireDtype.FLOAT16, 4, 255)),
      generation: mostly<Generation>("current", fc.constantFrom<Generation>("previous", "next", 0, 0xffffffff)),
      step: mostly(0, fc.oneof(fc.constant(1), u32)),
      offset: mostly(
        0,
        fc.constantFrom(1, -1, 0.5, -64, 256, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -1e6, 2 ** 53),
      ),
      values: mostly<"valid" | "other" | { at: number; value: number } | { length: number }>(
        "valid",
        fc.oneof(
          fc.constant("other" as const),
          // A payload of another length, which the header says.
          fc.record({ length: fc.constantFrom(0, 2, 4, 128, 252, 260, 512) }),
          fc.record({
            at: fc.nat({ max: 63 }),
            value: fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 3.4e38, 1e39),
          }),
        ),
      ),
      claim: mostly(0, fc.constantFrom(-1, 1, -4, 4, -256, maxChunkBytes, 0xffffffff)),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("end" as const), rank: mostly(1, fc.constant(0)), step: mostly(0, u32) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("pull" as const),
      dtype: fc.constantFrom(0, 1, 2, 3, 9),
      minVersion: fc.constantFrom(0, 1, 0xffffffff),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("frame" as const), type: fc.nat({ max: 255 }), payload: fc.uint8Array({ maxLength: 64 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("bytes" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 96 }) }) },
);

export const dataChannelJunk: Arbitrary<Junk> = fc.record({
  hello: mostly<Junk["hello"]>("right", fc.constantFrom<Junk["hello"]>("other", undefined)),
  pieces: fc.array(piece, { minLength: 1, maxLength: 6 }),
  end: mostly(true, fc.constant(false)),
  cut: fc.option(fc.nat({ max: 999 }), { nil: undefined }),
  splits: fc.array(fc.nat({ max: 1000 }), { maxLength: 3 }),
});

export interface JunkBytes {
  /** The writes, in order. */
  writes: Uint8Array[];
  /** A piece sent whole was a chunk with a valid header and finite values other than the reference's. */
  mayChangeValues: boolean;
}

export function junkBytes(junk: Junk, shard: FuzzedShard): JunkBytes {
  const parts: Uint8Array[] = [];
  const changers: number[] = [];
  const pieces: JunkPiece[] = [
    ...(junk.hello === undefined ? [] : [{ kind: "hello" as const, job: junk.hello }]),
    ...junk.pieces,
    ...(junk.end ? [{ kind: "end" as const, rank: 1, step: 0 }] : []),
  ];
  for (const piece of pieces) {
    const { bytes, changesValues } = pieceBytes(piece, shard);
    parts.push(bytes);
    if (changesValues) changers.push(parts.reduce((total, part) => total + part.byteLength, 0));
  }
  const all = Buffer.concat(parts);
  const length = junk.cut === undefined ? all.byteLength : Math.floor((all.byteLength * junk.cut) / 1000);
  const bounds = [...new Set([0, ...junk.splits.map((split) => Math.floor((length * split) / 1000)), length])].sort((a, b) => a - b);
  const writes = bounds.slice(1).map((end, i) => new Uint8Array(all.subarray(bounds[i]!, end)));
  return { writes: writes.filter((write) => write.byteLength > 0), mayChangeValues: changers.some((end) => end <= length) };
}

function pieceBytes(piece: JunkPiece, shard: FuzzedShard): { bytes: Uint8Array; changesValues: boolean } {
  const config = shard.harness.config;
  switch (piece.kind) {
    case "hello": {
      const job =
        piece.job === "right" ? Buffer.from(config.jobId) : piece.job === "other" ? Buffer.from(`${config.jobId}-other`) : piece.job;
      return { bytes: Buffer.concat([frame({ type: FrameType.HELLO, payloadBytes: job.byteLength }), job]), changesValues: false };
    }
    case "chunk": {
      const valid = shard.chunks(Math.min(piece.rank, 1))[piece.chunk]!;
      const values = new Float32Array(valid.data.slice().buffer);
      if (piece.values === "other") for (let i = 0; i < values.length; i++) values[i] = values[i]! * 2 + 1;
      else if (piece.values !== "valid" && "at" in piece.values) values[piece.values.at] = piece.values.value;
      let payload = encode(values, piece.dtype);
      if (typeof piece.values === "object" && "length" in piece.values) {
        const resized = new Uint8Array(piece.values.length);
        resized.set(payload.subarray(0, resized.byteLength));
        payload = resized;
      }
      const generations = { current: shard.generation, previous: shard.generation - 1, next: shard.generation + 1 };
      const header = frame({
        type: FrameType.PUSH_CHUNK,
        dtype: piece.dtype,
        rank: piece.rank,
        generation: typeof piece.generation === "number" ? piece.generation : generations[piece.generation],
        step: piece.step,
        offset: Number(valid.offset) + piece.offset,
        payloadBytes: Math.max(0, Math.min(0xffffffff, payload.byteLength + piece.claim)),
      });
      // Whether the shard may take it with values other than the reference's: a valid header
      // (whatever chunk its offset names) and values that may all be finite, not that chunk's own.
      const key = (Number(valid.offset) + piece.offset - config.range.begin) / config.chunkElements;
      const headerValid =
        piece.rank <= 1 &&
        piece.generation === "current" &&
        piece.step === 0 &&
        piece.dtype <= 3 &&
        piece.claim === 0 &&
        Number.isInteger(key) &&
        key >= 0 &&
        key < shard.harness.shard.chunks.length;
      const rightLength = payload.byteLength === valid.data.byteLength / (piece.dtype === 2 || piece.dtype === 3 ? 2 : 1);
      const sameValues = piece.values === "valid" || (typeof piece.values === "object" && "length" in piece.values && rightLength);
      const ownValues = sameValues && key === piece.chunk;
      const wrongValues =
        typeof piece.values === "object" && ("length" in piece.values ? !rightLength : !Number.isFinite(Math.fround(piece.values.value)));
      return { bytes: Buffer.concat([header, payload]), changesValues: headerValid && !ownValues && !wrongValues };
    }
    case "end":
      return {
        bytes: frame({ type: FrameType.PUSH_END, rank: piece.rank, step: piece.step, generation: shard.generation }),
        changesValues: false,
      };
    case "pull":
      return { bytes: frame({ type: FrameType.PULL, dtype: piece.dtype, step: piece.minVersion }), changesValues: false };
    case "frame":
      return {
        bytes: Buffer.concat([frame({ type: piece.type as FrameType, payloadBytes: piece.payload.byteLength }), piece.payload]),
        changesValues: false,
      };
    case "bytes":
      return { bytes: piece.bytes, changesValues: false };
  }
}

/** The chunk's values as the dtype carries them (an unknown dtype: as float32). */
function encode(values: Float32Array, dtype: number): Uint8Array {
  if (dtype !== WireDtype.BFLOAT16 && dtype !== WireDtype.FLOAT16) return new Uint8Array(values.buffer);
  const out = new Uint16Array(values.length);
  (dtype === WireDtype.BFLOAT16 ? encodeBfloat16Js : encodeFloat16Js)(values, 0, values.length, out);
  return new Uint8Array(out.buffer);
}
