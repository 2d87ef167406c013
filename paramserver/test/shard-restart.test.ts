/**
 * A restore into a shard that has trained, as a restarted coordinator or shard asks for:
 * while closed for a new generation, the snapshot's version, parameters and optimizer
 * state replace whatever the shard held, bit for bit, and training goes on as from the
 * snapshot; the initial state (an empty restore path) is the seeded parameters with a zero
 * optimizer state. While open, a restore is refused and changes nothing.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ModelSpecSchema, OptimizerSpecSchema, PushRequestSchema } from "@trainfleet/proto";
import { dataShape, initialParameters, parameterLayout } from "@trainfleet/spec";
import { describe, expect, it } from "vitest";
import { ParameterShard } from "../src/parameter-shard.js";
import type { ShardConfig } from "../src/shard-config.js";
import type { ShardState } from "../src/shard-snapshot.js";
import { initialShardState } from "../src/shard-snapshot.js";
import { bits, errorOf } from "./support.js";

const layout = parameterLayout(
  create(ModelSpecSchema, { kind: { case: "mlp", value: { hiddenUnits: [4] } } }),
  dataShape({ name: "fashion-mnist", manifest: "" }),
);
const adam = create(OptimizerSpecSchema, {
  kind: { case: "adam", value: { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } },
});

function config(generation: number, overrides: Partial<ShardConfig> = {}): ShardConfig {
  return {
    jobId: "job-a",
    generation,
    worldSize: 2,
    range: { begin: 100, end: 403 },
    chunkElements: 64,
    optimizer: adam,
    layout,
    seed: 3,
    ...overrides,
  };
}

/** Rank's push of its gradient for the shard's current step, in its current generation; only the first `chunks` chunks when given. */
function push(shard: ParameterShard, rank: number, chunks = Infinity): void {
  const c = shard.config!;
  const step = shard.version;
  const transaction = shard.beginPush();
  let index = 0;
  for (let begin = c.range.begin; begin < c.range.end && index < chunks; begin += c.chunkElements, index++) {
    const end = Math.min(c.range.end, begin + c.chunkElements);
    const values = Float32Array.from({ length: end - begin }, (_, i) => Math.sin((begin + i) * 0.37 + step * 1.3 + rank) * (1 + step));
    transaction.add(
      create(PushRequestSchema, {
        jobId: c.jobId,
        generation: c.generation,
        step,
        rank,
        offset: BigInt(begin),
        data: new Uint8Array(values.buffer),
      }),
    );
  }
  transaction.commit();
}

/** Whole steps from both ranks. */
function train(shard: ParameterShard, steps: number): void {
  for (let n = 0; n < steps; n++) for (let rank = 0; rank < shard.config!.worldSize; rank++) push(shard, rank);
}

/** Everything a restore sets, as bits. */
function stateBits(shard: ParameterShard) {
  const snapshot = shard.snapshot();
  return { version: snapshot.version, parameters: bits(snapshot.parameters), state: snapshot.state.map(bits) };
}

function stateOf(state: ShardState) {
  return { version: state.version, parameters: bits(state.parameters), state: state.state.map(bits) };
}

/** A shard of `generation` 1 that has trained `steps` steps, with the snapshot it took at version 2, and the versions it snapshotted. */
function trainedShard(steps: number, overrides: Partial<ShardConfig> = {}) {
  const shard = new ParameterShard();
  shard.configure(config(1, overrides));
  shard.openGeneration(1, 0);
  const taken: number[] = [];
  shard.onSnapshot((snapshot) => taken.push(snapshot.version));
  train(shard, 2);
  const atVersion2 = shard.snapshot();
  train(shard, steps - 2);
  return { shard, atVersion2, taken };
}

describe("a restore into a shard that has trained", () => {
  it("while closed for a new generation, gives bitwise the snapshot's state (Adam), and training goes on as from the snapshot", async () => {
    const { shard, atVersion2 } = trainedShard(5);
    // Half of step 5 from rank 0: the barrier holds it when the new generation comes.
    push(shard, 0, 2);
    const never = new AbortController().signal;
    const oldPull = shard.waitForVersion("job-a", 6, never);
    const revision = shard.revision;

    shard.configure(config(2));
    await expect(oldPull).rejects.toMatchObject({ code: Code.ABORTED });
    shard.restore(atVersion2);
    expect([shard.phase, shard.version, shard.generation]).toEqual(["closed", 2, 2]);
    expect(stateBits(shard)).toEqual(stateOf(atVersion2));
    expect(shard.revision).toBeGreaterThan(revision);
    // Version 2 is reached again, in generation 2: a checkpoint of it says so.
    expect(shard.snapshot().generation).toBe(2);

    shard.openGeneration(2, 2);
    expect(await shard.waitForVersion("job-a", 2, never)).toMatchObject({ version: 2, generation: 2 });
    // A shard restored from the same snapshot when fresh: the two train alike, so the step left half done is gone.
    const fresh = new ParameterShard();
    fresh.configure(config(2));
    fresh.restore(atVersion2);
    fresh.openGeneration(2, 2);
    train(shard, 3);
    train(fresh, 3);
    expect(shard.version).toBe(5);
    expect(stateBits(shard)).toEqual(stateBits(fresh));
  });

  it("restarts the snapshot schedule at the restored version, so versions snapshotted before are snapshotted again", () => {
    const { shard, atVersion2, taken } = trainedShard(5, { checkpointEverySteps: 2 });
    shard.requestSnapshot(7);
    expect(taken).toEqual([2, 4]);
    shard.configure(config(2, { checkpointEverySteps: 2 }));
    shard.restore(atVersion2);
    shard.openGeneration(2, 2);
    train(shard, 5);
    // 4 again; the request for 7 was the old coordinator's, made void by the restore.
    expect(taken).toEqual([2, 4, 4, 6]);
  });

  it("of the initial state (an empty restore path) gives the seeded parameters and a zero optimizer state at version 0", () => {
    const { shard } = trainedShard(3);
    shard.configure(config(2));
    const initial = initialShardState(shard.config!);
    shard.restore(initial);
    expect([shard.phase, shard.version]).toEqual(["closed", 0]);
    const { begin, end } = shard.config!.range;
    expect(bits(shard.parameters)).toEqual(bits(initialParameters(layout, 3, begin, end)));
    expect(shard.snapshot().state.map((values) => values.every((v) => v === 0))).toEqual([true, true]);

    // The same as a shard that never trained.
    const fresh = new ParameterShard();
    fresh.configure(config(2));
    expect(stateBits(shard)).toEqual(stateBits(fresh));
    shard.openGeneration(2, 0);
    fresh.openGeneration(2, 0);
    train(shard, 2);
    train(fresh, 2);
    expect(stateBits(shard)).toEqual(stateBits(fresh));
  });

  it("is refused while the shard is open, naming why, and changes nothing", () => {
    const { shard, atVersion2 } = trainedShard(3);
    const before = stateBits(shard);
    const revision = shard.revision;
    const error = errorOf(() => shard.restore(atVersion2));
    expect([error.code, error.message]).toEqual([
      Code.FAILED_PRECONDITION,
      "cannot restore version 2: the shard is open for generation 1, and pulls may be reading version 3; restore after a new generation's ShardAssignment, before its open_generation",
    ]);
    expect(stateBits(shard)).toEqual(before);
    expect([shard.phase, shard.revision]).toEqual(["open", revision]);
  });
});
