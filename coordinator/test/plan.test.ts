import { create } from "@bufbuild/protobuf";
import { JobSpecSchema, Shuffle } from "@trainfleet/proto";
import { resolveJobSpec } from "@trainfleet/spec";
import { describe, expect, it } from "vitest";
import { planJob } from "../src/job/plan.js";

const spec = (training: object, replicas = 2) =>
  resolveJobSpec(
    create(JobSpecSchema, { model: { kind: { case: "mlp", value: { hiddenUnits: [10] } } }, training, workers: { replicas } }),
  );

describe("planJob", () => {
  it("gives each shard a contiguous range and covers every parameter once", () => {
    const plan = planJob(
      spec({}),
      ["a:1", "b:2", "c:3"].map((address, i) => ({ address, dataAddress: `d:${i}` })),
    );
    // 784*10 + 10 + 10*10 + 10 parameters.
    expect(plan.layout.parameterCount).toBe(7960);
    expect(plan.shardRanges).toEqual([
      { index: 0, address: "a:1", dataAddress: "d:0", begin: 0n, end: 2653n },
      { index: 1, address: "b:2", dataAddress: "d:1", begin: 2653n, end: 5306n },
      { index: 2, address: "c:3", dataAddress: "d:2", begin: 5306n, end: 7960n },
    ]);
  });

  it("orders the samples as training.shuffle says: global by default, block in lanes of workers.replicas", () => {
    const shards = [{ address: "a:1", dataAddress: "" }];
    expect(planJob(spec({}), shards).sampleOrder).toEqual({ kind: "global" });
    expect(planJob(spec({ shuffle: Shuffle.BLOCK, shuffleWindow: 256 }, 3), shards).sampleOrder).toEqual({
      kind: "block",
      window: 256,
      lanes: 3,
    });
    expect(planJob(spec({ shuffle: Shuffle.FEISTEL }), shards).sampleOrder).toEqual({ kind: "feistel" });
  });

  it.each([
    [{ epochs: 3, batchSizePerWorker: 64 }, 2, 469, 1407],
    [{ epochs: 1, batchSizePerWorker: 100 }, 3, 200, 200],
    [{ epochs: 2, batchSizePerWorker: 7 }, 3, 2858, 5716],
    [{ epochs: 5, batchSizePerWorker: 64, maxSteps: 20 }, 2, 469, 20],
  ])("counts steps for %j with workers.replicas %i: %i per epoch, %i in all", (training, workers, perEpoch, total) => {
    const plan = planJob(spec(training, workers), [{ address: "a:1", dataAddress: "" }]);
    expect([plan.stepsPerEpoch, plan.totalSteps, plan.globalBatchSize]).toEqual([
      perEpoch,
      total,
      workers * (training as { batchSizePerWorker: number }).batchSizePerWorker,
    ]);
  });
});
