/**
 * The colocated placement's in-memory link: the worker's gradient is lent to its shard (no
 * copy) and the next version is copied back chunk by chunk, with the same checks and the
 * same all-or-nothing push as over the network.
 */
import { create } from "@bufbuild/protobuf";
import { createLocalShardLink } from "@trainfleet/dataplane";
import { kernelFloat32Array } from "@trainfleet/kernels";
import { Code, ModelSpecSchema, OptimizerSpecSchema, PushRequestSchema, TrainfleetError } from "@trainfleet/proto";
import { dataShape, parameterLayout } from "@trainfleet/spec";
import { describe, expect, it } from "vitest";
import { ParameterShard } from "../src/parameter-shard.js";

const layout = parameterLayout(
  create(ModelSpecSchema, { kind: { case: "mlp", value: { hiddenUnits: [] } } }),
  dataShape({ name: "fashion-mnist", manifest: "" }),
);
const chunks = [
  { begin: 100, end: 104 },
  { begin: 104, end: 108 },
];

function colocatedShard(): ParameterShard {
  const shard = new ParameterShard();
  // This worker's shard holds [100, 108) of the whole vector, in chunks of 4.
  shard.configure({
    jobId: "j",
    generation: 1,
    worldSize: 2,
    range: { begin: 100, end: 108 },
    chunkElements: 4,
    optimizer: create(OptimizerSpecSchema, { kind: { case: "sgd", value: { learningRate: 0.5, momentum: 0 } } }),
    layout,
    seed: 1,
  });
  shard.openGeneration(1, 0);
  return shard;
}

/** Rank 1's push of `value` everywhere, as a remote worker's would arrive. */
function pushRank1(shard: ParameterShard, value: number): void {
  const push = shard.beginPush();
  for (const offset of [100, 104])
    push.add(
      create(PushRequestSchema, {
        jobId: "j",
        generation: 1,
        step: 0,
        rank: 1,
        offset: BigInt(offset),
        data: new Uint8Array(new Float32Array(4).fill(value).buffer),
      }),
    );
  push.commit();
}

describe("the colocated shard link", () => {
  it("averages the lent gradient with the other ranks' pushes and copies the next version back", async () => {
    const shard = colocatedShard();
    const link = createLocalShardLink(shard, "j");
    const before = Float32Array.from(shard.parameters);
    const gradient = kernelFloat32Array(200).fill(1);
    const into = kernelFloat32Array(200);
    const pulled = link.pushThenPull({ generation: 1, step: 0, rank: 0 }, gradient, chunks, into);
    pushRank1(shard, 3);
    expect(await pulled).toBe(1);
    expect(into.subarray(100, 108)).toEqual(Float32Array.from(before, (p) => p - 0.5 * 2));
    // Only the shard's range was written.
    expect(into.subarray(0, 100).every((v) => v === 0) && into.subarray(108).every((v) => v === 0)).toBe(true);
  });

  it("rejects a lent gradient holding a NaN, naming data, and the step completes as if it never came", async () => {
    const shard = colocatedShard();
    const link = createLocalShardLink(shard, "j");
    const before = Float32Array.from(shard.parameters);
    const bad = kernelFloat32Array(200).fill(1);
    bad[105] = Number.NaN;
    const error = await link.push({ generation: 1, step: 0, rank: 0 }, bad, chunks).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TrainfleetError);
    expect([(error as TrainfleetError).code, (error as TrainfleetError).field]).toEqual([Code.INVALID_ARGUMENT, "data"]);
    expect((error as TrainfleetError).message).toMatch(/holds NaN at element 105/);
    pushRank1(shard, 3);
    // Rank 0's first chunk (all ones) was taken back with the rejected push: nothing is applied.
    expect(shard.version).toBe(0);
    expect(shard.parameters).toEqual(before);
    await link.push({ generation: 1, step: 0, rank: 0 }, kernelFloat32Array(200).fill(5), chunks);
    expect(shard.version).toBe(1);
    expect(shard.parameters).toEqual(Float32Array.from(before, (p) => p - 0.5 * 4));
  });
});
