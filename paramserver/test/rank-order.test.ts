import { create } from "@bufbuild/protobuf";
import { ModelSpecSchema, OptimizerSpecSchema, PushRequestSchema } from "@trainfleet/proto";
import { dataShape, parameterLayout } from "@trainfleet/spec";
import { describe, expect, it } from "vitest";
import { ParameterShard } from "../src/parameter-shard.js";

const layout = parameterLayout(
  create(ModelSpecSchema, { kind: { case: "mlp", value: { hiddenUnits: [] } } }),
  dataShape({ name: "fashion-mnist", manifest: "" }),
);

function shardAfter(arrival: number[], gradients: Float32Array[]): Float32Array {
  const shard = new ParameterShard();
  shard.configure({
    jobId: "j",
    generation: 1,
    worldSize: gradients.length,
    range: { begin: 0, end: 4 },
    chunkElements: 2,
    optimizer: create(OptimizerSpecSchema, { kind: { case: "sgd", value: { learningRate: 1, momentum: 0 } } }),
    layout,
    seed: 1,
  });
  shard.openGeneration(1, 0);
  for (const rank of arrival) {
    const push = shard.beginPush();
    for (const offset of [0, 2]) {
      const data = new Uint8Array(gradients[rank]!.slice(offset, offset + 2).buffer);
      push.add(create(PushRequestSchema, { jobId: "j", generation: 1, step: 0, rank, offset: BigInt(offset), data }));
    }
    push.commit();
  }
  expect(shard.version).toBe(1);
  return Float32Array.from(shard.parameters);
}

describe("aggregation order", () => {
  // Values where float32 addition is visibly not associative: 1e8 + 1 - 1e8 is 0 or 1
  // depending on the order the terms are added in.
  const gradients = [Float32Array.of(1e8, 3, 0.1, -7), Float32Array.of(1, -1e8, 0.2, 1e-9), Float32Array.of(-1e8, 1e8, 0.3, 7)];

  it("does not depend on the order in which ranks arrive", () => {
    const orders = [
      [0, 1, 2],
      [2, 1, 0],
      [1, 2, 0],
      [2, 0, 1],
    ];
    const results = orders.map((order) => shardAfter(order, gradients));
    for (const result of results) expect(new Uint32Array(result.buffer)).toEqual(new Uint32Array(results[0]!.buffer));
  });

  it("is the rank-order sum ((g0 + g1) + g2) / 3, rounded to float32 after each operation", () => {
    const initial = shardAfter(
      [0, 1, 2],
      gradients.map(() => new Float32Array(4)),
    );
    const result = shardAfter([2, 0, 1], gradients);
    const f = Math.fround;
    const expected = initial.map((p, i) => f(p - f(f(f(gradients[0]![i]! + gradients[1]![i]!) + gradients[2]![i]!) / 3)));
    expect(Array.from(result)).toEqual(Array.from(expected));
    // And not the sum in arrival order, which differs here.
    const arrivalOrder = initial.map((p, i) => f(p - f(f(f(gradients[2]![i]! + gradients[0]![i]!) + gradients[1]![i]!) / 3)));
    expect(Array.from(result)).not.toEqual(Array.from(arrivalOrder));
  });
});
