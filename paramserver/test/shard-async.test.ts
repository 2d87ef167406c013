/**
 * Bounded-staleness async mode on one shard: each rank's whole gradient applied alone in
 * arrival order (bit for bit an optimizer applied by hand), stale pushes refused ABORTED
 * past maxStaleness, ranks' partial pushes interleaving, retries acknowledged and not
 * applied twice, pulls reading a whole version that later gradients do not touch, and a
 * new generation opening at the shard's own version.
 */
import { create } from "@bufbuild/protobuf";
import type { PushResult, PushTransaction } from "@trainfleet/dataplane";
import { Code, ModelSpecSchema, OptimizerSpecSchema, PushRequestSchema } from "@trainfleet/proto";
import { dataShape, initialParameters, parameterLayout } from "@trainfleet/spec";
import { describe, expect, it } from "vitest";
import { createOptimizer } from "../src/optimizer.js";
import { ParameterShard } from "../src/parameter-shard.js";
import type { ShardConfig } from "../src/shard-config.js";
import { bits, errorOf } from "./support.js";

const layout = parameterLayout(
  create(ModelSpecSchema, { kind: { case: "mlp", value: { hiddenUnits: [4] } } }),
  dataShape({ name: "fashion-mnist", manifest: "" }),
);
const jobId = "job-async";
// [100, 403) in chunks of 64: five chunks, the last one 47 long.
const range = { begin: 100, end: 403 };
const size = range.end - range.begin;
const chunkElements = 64;
const chunkCount = 5;
const adam = create(OptimizerSpecSchema, {
  kind: { case: "adam", value: { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } },
});

function config(generation: number, worldSize: number, maxStaleness = 0): ShardConfig {
  return { jobId, generation, worldSize, range, chunkElements, optimizer: adam, layout, seed: 3, mode: "async", maxStaleness };
}

function openShard(c: ShardConfig): ParameterShard {
  const shard = new ParameterShard();
  shard.configure(c);
  shard.openGeneration(c.generation, 0);
  return shard;
}

/** Rank's gradient computed from version `step`, element `element` (global index). */
const gradient = (step: number, rank: number, element: number) => Math.sin(element * 0.37 + step * 1.3 + rank) * (1 + step);

/** Rank's whole gradient from `step`, shard-local indexing. */
const wholeGradient = (step: number, rank: number) => Float32Array.from({ length: size }, (_, i) => gradient(step, rank, range.begin + i));

/** Adds rank's chunks `only` (all by default) of its gradient from `step` to `transaction`. */
function addChunks(shard: ParameterShard, transaction: PushTransaction, rank: number, step: number, only?: number[]): void {
  const whole = wholeGradient(step, rank);
  for (let index = 0; index < chunkCount; index++) {
    if (only !== undefined && !only.includes(index)) continue;
    const begin = index * chunkElements;
    const values = whole.slice(begin, Math.min(size, begin + chunkElements));
    transaction.add(
      create(PushRequestSchema, {
        jobId,
        generation: shard.config!.generation,
        step,
        rank,
        offset: BigInt(range.begin + begin),
        data: new Uint8Array(values.buffer),
      }),
    );
  }
}

/** One push of rank's gradient from `step` (the shard's version by default), as a transport does it. */
function push(shard: ParameterShard, rank: number, step = shard.version, only?: number[]): PushResult {
  const transaction = shard.beginPush();
  try {
    addChunks(shard, transaction, rank, step, only);
  } catch (error) {
    transaction.abort();
    throw error;
  }
  return transaction.commit();
}

/** The optimizer by hand: each listed (rank, step) gradient applied alone, in order, over the whole slice. */
function byHand(applied: Array<[rank: number, step: number]>): { parameters: Float32Array; state: Float32Array[] } {
  const optimizer = createOptimizer(adam, size);
  let params = initialParameters(layout, 3, range.begin, range.end);
  let out: Float32Array = new Float32Array(size);
  applied.forEach(([rank, step], i) => {
    optimizer.apply(params, wholeGradient(step, rank), out, 0, size, i + 1);
    optimizer.commit();
    [params, out] = [out, params];
  });
  return { parameters: params, state: optimizer.state() };
}

const stateBits = (shard: ParameterShard) => {
  const snapshot = shard.snapshot();
  return { version: snapshot.version, parameters: bits(snapshot.parameters), state: snapshot.state.map(bits) };
};

function expectByHand(shard: ParameterShard, applied: Array<[number, number]>): void {
  const expected = byHand(applied);
  expect(shard.version).toBe(applied.length);
  expect(bits(shard.parameters)).toEqual(bits(expected.parameters));
  expect(shard.snapshot().state.map(bits)).toEqual(expected.state.map(bits));
}

describe("async shard", () => {
  it("applies each rank's whole gradient alone, in arrival order", () => {
    const shard = openShard(config(1, 2));
    const order: Array<[number, number]> = [];
    // Rank 1 computes from the version before rank 0's push lands: one version stale.
    for (const [rank, step] of [
      [0, 0],
      [1, 0],
      [0, 1],
      [1, 2],
      [1, 4],
      [0, 3],
    ] as Array<[number, number]>) {
      expect(push(shard, rank, step)).toEqual({ chunksAccepted: chunkCount, chunksDuplicate: 0, version: order.length + 1 });
      order.push([rank, step]);
    }
    expectByHand(shard, order);
    expect(shard.missedDeadlines()).toEqual([]);
  });

  it("refuses a gradient more than maxStaleness versions stale with ABORTED, and applies one exactly that stale", () => {
    const shard = openShard(config(1, 2, 2));
    for (let step = 0; step < 3; step++) push(shard, 0, step);
    const before = stateBits(shard);
    const stale = errorOf(() => push(shard, 1, 0));
    expect(stale.code).toBe(Code.ABORTED);
    expect(stale.field).toBe("step");
    expect(stale.message).toBe(
      "step: the gradient of rank 1 was computed from version 0, the shard is at 3: 3 versions stale, more than training.maxStaleness 2; pull and compute it again",
    );
    expect(stateBits(shard)).toEqual(before);
    // Nothing of it stayed: the next push of rank 1 is whole on its own.
    expect(push(shard, 1, 1).chunksAccepted).toBe(chunkCount);
    expectByHand(shard, [
      [0, 0],
      [0, 1],
      [0, 2],
      [1, 1],
    ]);
  });

  it("refuses a gradient from the future", () => {
    const shard = openShard(config(1, 2));
    const error = errorOf(() => push(shard, 0, 1));
    expect(error.code).toBe(Code.FAILED_PRECONDITION);
    expect(error.field).toBe("step");
    expect(error.message).toContain("from the future");
    expect(shard.version).toBe(0);
  });

  it("keeps ranks' partial pushes apart while they interleave", () => {
    const shard = openShard(config(1, 2));
    const first = shard.beginPush();
    const second = shard.beginPush();
    addChunks(shard, first, 0, 0, [0, 1]);
    addChunks(shard, second, 1, 0, [4, 0, 2]);
    addChunks(shard, first, 0, 0, [4, 2]);
    expect(shard.version).toBe(0);
    addChunks(shard, first, 0, 0, [3]);
    // Rank 0 is whole and applied alone; rank 1's three chunks wait.
    expect(first.commit()).toEqual({ chunksAccepted: chunkCount, chunksDuplicate: 0, version: 1 });
    addChunks(shard, second, 1, 0, [1, 3]);
    expect(second.commit()).toEqual({ chunksAccepted: chunkCount, chunksDuplicate: 0, version: 2 });
    expectByHand(shard, [
      [0, 0],
      [1, 0],
    ]);
  });

  it("takes back a failed partial push of one rank and leaves the other's", () => {
    const shard = openShard(config(1, 2));
    push(shard, 1, 0, [0, 1]);
    const failing = shard.beginPush();
    addChunks(shard, failing, 0, 0, [0, 1, 2]);
    failing.abort();
    push(shard, 1, 0, [2, 3, 4]);
    expect(shard.version).toBe(1);
    // Rank 0's chunks went with its push: the retry sends all of them again.
    expect(push(shard, 0, 0).chunksAccepted).toBe(chunkCount);
    expectByHand(shard, [
      [1, 0],
      [0, 0],
    ]);
  });

  it("drops a rank's abandoned partial push when it pushes a newer gradient, and refuses the older one's chunks then", () => {
    const shard = openShard(config(1, 2));
    push(shard, 0, 0, [0, 1, 2]);
    push(shard, 1, 0);
    push(shard, 0, 1, [3]);
    const late = errorOf(() => push(shard, 0, 0, [4]));
    expect(late.code).toBe(Code.ABORTED);
    expect(late.field).toBe("step");
    push(shard, 0, 1, [0, 1, 2, 4]);
    expectByHand(shard, [
      [1, 0],
      [0, 1],
    ]);
  });

  it("acknowledges a retry of an applied push as duplicate without applying it again", () => {
    const shard = openShard(config(1, 2, 1));
    push(shard, 0, 0);
    const after = stateBits(shard);
    expect(push(shard, 0, 0)).toEqual({ chunksAccepted: 0, chunksDuplicate: chunkCount, version: 1 });
    expect(stateBits(shard)).toEqual(after);
    // Still a duplicate once other gradients have landed, even past maxStaleness: it was applied.
    push(shard, 1, 1);
    push(shard, 1, 2);
    expect(push(shard, 0, 0)).toEqual({ chunksAccepted: 0, chunksDuplicate: chunkCount, version: 3 });
    expectByHand(shard, [
      [0, 0],
      [1, 1],
      [1, 2],
    ]);
  });

  it("serves a pull a whole version that later gradients do not change", async () => {
    const shard = openShard(config(1, 2));
    push(shard, 0, 0);
    const signal = new AbortController().signal;
    const served = await shard.waitForVersion(jobId, 1, signal);
    const atOne = bits(shard.snapshot().parameters);
    push(shard, 1, 0);
    expect(served.version).toBe(1);
    expect(bits(served.values)).toEqual(atOne);
    // The version moved on, which an async pull's copy does not mind.
    expect(() => shard.checkServing(served)).not.toThrow();

    // A streamed pull waits for the next whole version (not one rank's chunks), then reads a copy.
    const chunks = new Map<number, Float32Array>();
    const streamed = shard.streamParameters(jobId, 3, signal, (index, version, values) => {
      expect(version).toBe(3);
      chunks.set(index, values);
    });
    push(shard, 0, 1, [0, 1, 2]);
    expect(chunks.size).toBe(0);
    push(shard, 0, 1, [3, 4]);
    await expect(streamed).resolves.toBe(3);
    const atThree = bits(shard.snapshot().parameters);
    push(shard, 1, 2);
    expect(shard.version).toBe(4);
    expect(chunks.size).toBe(chunkCount);
    const received = new Float32Array(size);
    for (const [index, values] of chunks)
      received.set(values.subarray(index * chunkElements, Math.min(size, (index + 1) * chunkElements)), index * chunkElements);
    expect(bits(received)).toEqual(atThree);
  });

  it("opens a new generation at its own version and forgets the ranks of the one before", () => {
    const shard = openShard(config(1, 2));
    push(shard, 0, 0);
    push(shard, 1, 1);
    push(shard, 0, 2, [0]);
    shard.configure(config(2, 3));
    // The coordinator's version is another shard's: this one goes on from its own.
    shard.openGeneration(2, 1);
    expect(shard.phase).toBe("open");
    expect(shard.version).toBe(2);
    // Rank 0's partial push went with the generation; rank 2 is new.
    expect(push(shard, 0, 2, [1, 2, 3, 4]).version).toBe(2);
    expect(push(shard, 2, 2).version).toBe(3);
    expect(push(shard, 0, 2, [0]).version).toBe(4);
    expectByHand(shard, [
      [0, 0],
      [1, 1],
      [2, 2],
      [0, 2],
    ]);
  });
});
