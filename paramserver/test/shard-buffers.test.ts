/**
 * A model's buffers (BatchNormalization's moving statistics), laid after its trainable
 * tensors: a step averages and optimises the trainable elements only, and makes the
 * buffers the values rank 0 pushed, whatever the other ranks pushed (PyTorch DDP's
 * broadcast_buffers). The shard's range here straddles the boundary inside one chunk.
 */
import { create } from "@bufbuild/protobuf";
import { ModelSpecSchema, OptimizerSpecSchema, PushRequestSchema } from "@trainfleet/proto";
import { initialParameters, parameterLayout } from "@trainfleet/spec";
import { describe, expect, it } from "vitest";
import { averageInRankOrder } from "../src/aggregate.js";
import { createOptimizer } from "../src/optimizer.js";
import { ParameterShard } from "../src/parameter-shard.js";
import type { ShardConfig } from "../src/shard-config.js";
import { bits } from "./support.js";

// dense/kernel [4, 3] + dense/bias [3] = 15 trainable, then moving mean and variance [3] each: P = 21.
const layout = parameterLayout(
  create(ModelSpecSchema, {
    kind: {
      case: "layers",
      value: {
        uri: "model.json",
        artifact: {
          digest: "d".repeat(64),
          tensors: [
            { name: "dense/kernel", shape: [4, 3], initializer: "glorot-uniform" },
            { name: "dense/bias", shape: [3], initializer: "zeros" },
          ],
          buffers: [
            { name: "norm/moving_mean", shape: [3], initializer: "zeros" },
            { name: "norm/moving_variance", shape: [3], initializer: "ones" },
          ],
        },
      },
    },
  }),
  { featureShape: [4], classes: 3, labelSize: 0, trainRecords: 10, evalRecords: 10 },
);
// [8, 21) in chunks of 4: [8, 12) [12, 16) [16, 20) [20, 21); the buffers begin at 15, inside the second.
const range = { begin: 8, end: 21 };
const size = range.end - range.begin;
const split = 15 - range.begin;
const chunkElements = 4;
const adam = create(OptimizerSpecSchema, {
  kind: { case: "adam", value: { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } },
});

function openShard(mode: "sync" | "async", worldSize: number): ParameterShard {
  const config: ShardConfig = {
    jobId: "job-buffers",
    generation: 1,
    worldSize,
    range,
    chunkElements,
    optimizer: adam,
    layout,
    seed: 5,
    mode,
  };
  const shard = new ParameterShard();
  shard.configure(config);
  shard.openGeneration(1, 0);
  return shard;
}

/** What rank pushes at `step`: a gradient for the trainable elements, its buffers after them (shard-local). */
const pushed = (step: number, rank: number) =>
  Float32Array.from({ length: size }, (_, i) => Math.cos(i * 0.71 + step * 0.3 + rank * 1.9) + rank);

function push(shard: ParameterShard, rank: number, step: number): void {
  const transaction = shard.beginPush();
  const values = pushed(step, rank);
  for (let begin = 0; begin < size; begin += chunkElements) {
    const chunk = values.slice(begin, Math.min(size, begin + chunkElements));
    transaction.add(
      create(PushRequestSchema, {
        jobId: "job-buffers",
        generation: 1,
        step,
        rank,
        offset: BigInt(range.begin + begin),
        data: new Uint8Array(chunk.buffer),
      }),
    );
  }
  transaction.commit();
}

describe("a shard holding a model's buffers", () => {
  it("lays the buffers after the trainable tensors, starting as their layer says", () => {
    expect(layout.trainableCount).toBe(15);
    expect(layout.parameterCount).toBe(21);
    expect(layout.tensors.map((t) => [t.name, t.offset, t.trainable])).toEqual([
      ["dense/kernel", 0, true],
      ["dense/bias", 12, true],
      ["norm/moving_mean", 15, false],
      ["norm/moving_variance", 18, false],
    ]);
    expect(Array.from(initialParameters(layout, 5, 15, 21))).toEqual([0, 0, 0, 1, 1, 1]);
  });

  it("sync: averages and optimises the trainable elements, and takes rank 0's buffers", () => {
    const shard = openShard("sync", 3);
    const optimizer = createOptimizer(adam, split);
    const expected = initialParameters(layout, 5, range.begin, range.end);
    for (let step = 0; step < 3; step++) {
      // Rank 0 last: arrival order does not matter.
      for (const rank of [2, 1, 0]) push(shard, rank, step);
      const contributions = [0, 1, 2].map((rank) => pushed(step, rank));
      const average = new Float32Array(split);
      averageInRankOrder(contributions, 0, split, average);
      optimizer.apply(expected, average, expected, 0, split, step + 1);
      optimizer.commit();
      expected.set(contributions[0]!.subarray(split), split);
      expect(shard.version).toBe(step + 1);
      expect(bits(shard.parameters)).toEqual(bits(expected));
    }
    // No optimizer state moves for the buffers (Adam's m and v stay 0 there).
    for (const state of shard.snapshot().state) expect(Array.from(state.subarray(split))).toEqual(new Array(size - split).fill(0));
  });

  it("async: rank 0's gradient brings its buffers; another rank's leaves them as they were", () => {
    const shard = openShard("async", 2);
    const initial = initialParameters(layout, 5, range.begin, range.end);
    push(shard, 1, 0);
    expect(Array.from(shard.parameters.subarray(split))).toEqual(Array.from(initial.subarray(split)));
    expect(bits(shard.parameters.subarray(0, split))).not.toEqual(bits(initial.subarray(0, split)));
    push(shard, 0, 1);
    expect(bits(shard.parameters.subarray(split))).toEqual(bits(pushed(1, 0).subarray(split)));
    const afterRankZero = shard.parameters.slice(split);
    push(shard, 1, 2);
    expect(bits(shard.parameters.subarray(split))).toEqual(bits(afterRankZero));
  });
});
