/**
 * A shard across generations: a new generation's assignment closes it (pushes refused
 * UNAVAILABLE, pulls wait, pulls of the old generation ABORTED), open_generation names
 * the version to go on from, and a shard one version ahead goes back to it bit for bit,
 * parameters and optimizer state, or says why it cannot. Snapshots carry the generation
 * their version was reached in, and a version reached again is snapshotted again.
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { Code, ModelSpecSchema, OptimizerSpecSchema, PushRequestSchema, TrainfleetError } from "@trainfleet/proto";
import { dataShape, parameterLayout } from "@trainfleet/spec";
import { describe, expect, it } from "vitest";
import { ParameterShard } from "../src/parameter-shard.js";
import type { ShardConfig } from "../src/shard-config.js";
import type { ShardSnapshot } from "../src/shard-snapshot.js";
import { bits, errorOf } from "./support.js";

const layout = parameterLayout(
  create(ModelSpecSchema, { kind: { case: "mlp", value: { hiddenUnits: [4] } } }),
  dataShape({ name: "fashion-mnist", manifest: "" }),
);
const jobId = "job-a";
// [100, 403) in chunks of 64: five chunks, the last one 47 long.
const range = { begin: 100, end: 403 };
const chunkElements = 64;
const chunkCount = 5;

const optimizers: Record<string, MessageInitShape<typeof OptimizerSpecSchema>> = {
  "sgd with momentum": { kind: { case: "sgd", value: { learningRate: 0.1, momentum: 0.9 } } },
  adam: { kind: { case: "adam", value: { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } } },
};

function config(generation: number, worldSize: number, overrides: Partial<ShardConfig> & { optimizerName?: string } = {}): ShardConfig {
  const { optimizerName = "adam", ...rest } = overrides;
  return {
    jobId,
    generation,
    worldSize,
    range,
    chunkElements,
    optimizer: create(OptimizerSpecSchema, optimizers[optimizerName]!),
    layout,
    seed: 3,
    ...rest,
  };
}

/** A shard configured for `c` and opened at version 0, as the first generation goes. */
function openShard(c: ShardConfig): ParameterShard {
  const shard = new ParameterShard();
  shard.configure(c);
  shard.openGeneration(c.generation, 0);
  return shard;
}

/** Rank's gradient for `step`: deterministic, different by step, rank and element. */
function gradient(step: number, rank: number, element: number): number {
  return Math.sin(element * 0.37 + step * 1.3 + rank) * (1 + step);
}

/** Rank's push of its gradient for the shard's current step, in the shard's current generation; only the chunks in `only` when given. */
function push(shard: ParameterShard, rank: number, only?: number[], step = shard.version): void {
  const c = shard.config!;
  const transaction = shard.beginPush();
  try {
    for (let index = 0; index < chunkCount; index++) {
      if (only !== undefined && !only.includes(index)) continue;
      const begin = c.range.begin + index * chunkElements;
      const end = Math.min(c.range.end, begin + chunkElements);
      const values = Float32Array.from({ length: end - begin }, (_, i) => gradient(step, rank, begin + i));
      transaction.add(
        create(PushRequestSchema, {
          jobId,
          generation: c.generation,
          step,
          rank,
          offset: BigInt(begin),
          data: new Uint8Array(values.buffer),
        }),
      );
    }
  } catch (error) {
    transaction.abort();
    throw error;
  }
  transaction.commit();
}

/** One whole step: every rank of the shard's generation pushes. */
function step(shard: ParameterShard): void {
  for (let rank = 0; rank < shard.config!.worldSize; rank++) push(shard, rank);
}

const stateBits = (shard: ParameterShard) => {
  const snapshot = shard.snapshot();
  return { version: snapshot.version, parameters: bits(snapshot.parameters), state: snapshot.state.map(bits) };
};

/** What `promise` came to, without leaving a rejection unhandled meanwhile; `settled` says whether it has. */
function watch<T>(promise: Promise<T>): { settled: () => boolean; result: Promise<{ value?: T; error?: TrainfleetError }> } {
  let done = false;
  const result = promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error: error as TrainfleetError }),
  );
  void result.then(() => (done = true));
  return { settled: () => done, result };
}

/** Lets every pending callback run once: what has not settled after it is waiting on the shard. */
const drain = () => new Promise<void>((resolve) => setImmediate(resolve));

const never = new AbortController().signal;

describe("a shard that took a generation's assignment is closed until the coordinator opens it", () => {
  it("refuses pushes UNAVAILABLE and holds pulls; once open, pushes are taken and the pull is served", async () => {
    const shard = new ParameterShard();
    shard.configure(config(1, 2));
    expect([shard.phase, shard.generation, shard.version]).toEqual(["closed", 1, 0]);
    const refused = errorOf(() => push(shard, 0));
    expect(refused.code).toBe(Code.UNAVAILABLE);
    expect(refused.message).toBe(
      "this shard is changing to generation 1 and takes no push until the coordinator opens it; follow the coordinator's next assignment",
    );

    const waiting = watch(shard.waitForVersion(jobId, 0, never));
    const sent: number[] = [];
    const streaming = watch(shard.streamParameters(jobId, 0, never, (index) => sent.push(index)));
    await drain();
    expect([waiting.settled(), streaming.settled(), sent]).toEqual([false, false, []]);

    shard.openGeneration(1, 0);
    expect(shard.phase).toBe("open");
    expect((await waiting.result).value).toMatchObject({ version: 0, generation: 1 });
    expect((await streaming.result).value).toBe(0);
    expect(sent).toEqual([0, 1, 2, 3, 4]);

    // The refused push left nothing behind: rank 1 alone does not complete the step.
    push(shard, 1);
    expect(shard.version).toBe(0);
    push(shard, 0);
    expect(shard.version).toBe(1);
  });

  it("opens only for the generation it took, and opening again changes nothing", () => {
    const unconfigured = errorOf(() => new ParameterShard().openGeneration(1, 0));
    expect([unconfigured.code, unconfigured.field]).toEqual([Code.FAILED_PRECONDITION, "generation"]);
    expect(unconfigured.message).toMatch(/cannot open generation 1: this shard took no assignment yet/);
    const shard = new ParameterShard();
    shard.configure(config(3, 2));
    const other = errorOf(() => shard.openGeneration(2, 0));
    expect(other.message).toBe(
      "generation: cannot open generation 2: this shard took the assignment of generation 3; send its ShardAssignment first",
    );
    expect(shard.phase).toBe("closed");
    shard.openGeneration(3, 0);
    step(shard);
    shard.openGeneration(3, 0);
    expect([shard.phase, shard.version]).toEqual(["open", 1]);
  });

  it("refuses the same generation with another world size", () => {
    const shard = openShard(config(1, 2));
    const error = errorOf(() => shard.configure(config(1, 3)));
    expect([error.code, error.field]).toEqual([Code.FAILED_PRECONDITION, "world_size"]);
    expect(error.message).toMatch(/generation 1 has world size 2 on this shard, the assignment says 3/);
  });
});

describe.each(Object.keys(optimizers))("a new generation after a step only this shard completed, with %s", (optimizerName) => {
  it("goes back to the version every shard holds, bit for bit, and the step re-run over fewer ranks is that of a shard that never went ahead", () => {
    // Shard A of two: it completes step 2 (version 3); shard B, not shown, did not.
    const shard = openShard(config(1, 2, { optimizerName }));
    step(shard);
    step(shard);
    const atVersion2 = stateBits(shard);
    const snapshot2 = shard.snapshot();
    expect(snapshot2.state.every((values) => values.some((v) => v !== 0))).toBe(true);
    step(shard);
    expect(shard.version).toBe(3);
    expect(stateBits(shard)).not.toEqual({ ...atVersion2, version: 3 });

    // A worker was lost: generation 2 has one rank. B reported version 2, so 2 it is.
    shard.configure(config(2, 1, { optimizerName }));
    expect([shard.phase, shard.version]).toEqual(["closed", 3]);
    shard.openGeneration(2, 2);
    expect([shard.phase, shard.version]).toEqual(["open", 2]);
    expect(stateBits(shard)).toEqual(atVersion2);
    // Version 2 was reached in generation 1, and stays so.
    expect(shard.snapshot().generation).toBe(1);

    // Step 2 again, now from rank 0 alone.
    push(shard, 0);
    expect(shard.version).toBe(3);
    const fresh = new ParameterShard();
    fresh.configure(config(2, 1, { optimizerName }));
    fresh.restore(snapshot2);
    fresh.openGeneration(2, 2);
    push(fresh, 0);
    expect(stateBits(shard)).toEqual(stateBits(fresh));
    expect(shard.snapshot().generation).toBe(2);
    // And the two go on alike.
    step(shard);
    step(fresh);
    expect(stateBits(shard)).toEqual(stateBits(fresh));
  });
});

describe("going back is refused, naming both versions, and the shard stays closed", () => {
  it("when a chunk of the next step was applied since", () => {
    const shard = openShard(config(1, 2));
    step(shard);
    // Both ranks pushed chunk 3 of step 1: it was applied into the buffers that held version 0.
    push(shard, 0, [3]);
    push(shard, 1, [3]);
    expect(shard.version).toBe(1);
    shard.configure(config(2, 1));
    const error = errorOf(() => shard.openGeneration(2, 0));
    expect(error.code).toBe(Code.FAILED_PRECONDITION);
    expect(error.message).toBe(
      "cannot open generation 2 at version 0: this shard holds version 1, and version 0 is gone: a chunk of step 1 was applied since, over it; resume the job from a checkpoint",
    );
    expect([shard.phase, shard.version]).toEqual(["closed", 1]);
    expect(errorOf(() => push(shard, 0)).code).toBe(Code.UNAVAILABLE);
  });

  it("when the versions differ by two, or the shard is behind", () => {
    const shard = openShard(config(1, 2));
    step(shard);
    step(shard);
    shard.configure(config(2, 2));
    expect(errorOf(() => shard.openGeneration(2, 0)).message).toBe(
      "cannot open generation 2 at version 0: this shard holds version 2, and it can only go on from its own version or go back one; resume the job from a checkpoint",
    );
    expect(errorOf(() => shard.openGeneration(2, 3)).message).toMatch(
      /^cannot open generation 2 at version 3: this shard holds version 2, and it can only go on/,
    );
    expect([shard.phase, shard.version]).toEqual(["closed", 2]);
    // The version it holds is fine.
    shard.openGeneration(2, 2);
    expect(shard.phase).toBe("open");
  });

  it("when it was restored from a checkpoint since, or went back already", () => {
    const source = openShard(config(1, 2));
    step(source);
    step(source);
    const restored = new ParameterShard();
    restored.configure(config(1, 2));
    restored.restore(source.snapshot());
    expect(errorOf(() => restored.openGeneration(1, 1)).message).toMatch(
      /holds version 2, and version 1 is gone: the shard was restored from a checkpoint since/,
    );

    source.configure(config(2, 2));
    source.openGeneration(2, 1);
    source.configure(config(3, 2));
    expect(errorOf(() => source.openGeneration(3, 0)).message).toMatch(
      /holds version 1, and version 0 is gone: it went back to version 1 already/,
    );
  });
});

describe("pulls across generations", () => {
  it("of the generation before are ABORTED when a new one is assigned, waiting or part-way through", async () => {
    const shard = openShard(config(1, 2));
    const waiting = watch(shard.waitForVersion(jobId, 1, never));
    const sent: number[] = [];
    const streaming = watch(shard.streamParameters(jobId, 1, never, (index) => sent.push(index)));
    // Chunk 0 of step 0 is complete: the stream hands it out early.
    push(shard, 0, [0]);
    push(shard, 1, [0]);
    await drain();
    expect([waiting.settled(), streaming.settled(), sent]).toEqual([false, false, [0]]);

    shard.configure(config(2, 1));
    for (const pull of [waiting, streaming]) {
      const { error } = await pull.result;
      expect(error).toBeInstanceOf(TrainfleetError);
      expect([error!.code, error!.message]).toEqual([Code.ABORTED, "the job moved to generation 2; pull again after your next assignment"]);
    }
  });

  it("being read out (the gRPC pull, between chunks) are ABORTED by a new generation's assignment, not by a repeat", async () => {
    const shard = openShard(config(1, 2));
    const served = await shard.waitForVersion(jobId, 0, never);
    expect(served).toMatchObject({ version: 0, generation: 1 });
    shard.configure(config(1, 2));
    shard.checkServing(served);
    shard.configure(config(2, 2));
    const error = errorOf(() => shard.checkServing(served));
    expect([error.code, error.message]).toEqual([Code.ABORTED, "the job moved to generation 2; pull again after your next assignment"]);
  });

  it("are not disturbed by an assignment that repeats the current generation", async () => {
    const shard = openShard(config(1, 2));
    const waiting = watch(shard.waitForVersion(jobId, 1, never));
    const sent: number[] = [];
    const streaming = watch(shard.streamParameters(jobId, 1, never, (index) => sent.push(index)));
    push(shard, 0);
    push(shard, 1, [0]);
    await drain();
    expect(sent).toEqual([0]);

    shard.configure(config(1, 2));
    await drain();
    expect([shard.phase, waiting.settled(), streaming.settled()]).toEqual(["open", false, false]);
    // Nor was the step in progress dropped: rank 1's remaining chunks complete it.
    push(shard, 1, [1, 2, 3, 4]);
    expect((await waiting.result).value).toMatchObject({ version: 1, generation: 1 });
    expect((await streaming.result).value).toBe(1);
    expect(sent).toEqual([0, 1, 2, 3, 4]);
  });

  it("that began while the shard was closed wait through a further generation and are served once it opens", async () => {
    const shard = openShard(config(1, 2));
    step(shard);
    shard.configure(config(2, 1));
    const waiting = watch(shard.waitForVersion(jobId, 1, never));
    // Version 2 is wanted: the pull waits for the step that the new world re-runs, not for the abandoned one.
    const sent: Array<[number, number]> = [];
    const streaming = watch(shard.streamParameters(jobId, 2, never, (index, version) => sent.push([index, version])));
    shard.configure(config(3, 1));
    await drain();
    expect([waiting.settled(), streaming.settled()]).toEqual([false, false]);
    shard.openGeneration(3, 1);
    expect((await waiting.result).value).toMatchObject({ version: 1, generation: 3 });
    push(shard, 0);
    expect((await streaming.result).value).toBe(2);
    expect(sent.map(([, version]) => version)).toEqual([2, 2, 2, 2, 2]);
  });

  it("that began closed never see the version the shard goes back from", async () => {
    const shard = openShard(config(1, 2));
    step(shard);
    const goneBack = stateBits(shard);
    step(shard);
    shard.configure(config(2, 1));
    let pulled: number[] | undefined;
    const waiting = watch(shard.waitForVersion(jobId, 2, never));
    const streaming = watch(
      shard.streamParameters(jobId, 1, never, (index, _version, values) => {
        pulled ??= [];
        pulled.push(...bits(values.subarray(index * chunkElements, Math.min(values.length, (index + 1) * chunkElements))));
      }),
    );
    await drain();
    expect([waiting.settled(), streaming.settled()]).toEqual([false, false]);
    shard.openGeneration(2, 1);
    expect((await streaming.result).value).toBe(1);
    expect(pulled).toEqual(goneBack.parameters);
    await drain();
    // Version 2 is not there any more: the pull that wants it waits for the re-run step.
    expect(waiting.settled()).toBe(false);
    push(shard, 0);
    expect((await waiting.result).value).toMatchObject({ version: 2, generation: 2 });
  });
});

describe("snapshots across generations", () => {
  it("carry the generation their version was reached in; a version reached again after going back is snapshotted again", () => {
    const shard = openShard(config(1, 2, { checkpointEverySteps: 2 }));
    const taken: ShardSnapshot[] = [];
    shard.onSnapshot((snapshot) => taken.push(snapshot));
    step(shard);
    step(shard);
    expect(taken.map((s) => [s.version, s.generation])).toEqual([[2, 1]]);

    shard.configure(config(2, 1, { checkpointEverySteps: 2 }));
    shard.openGeneration(2, 1);
    push(shard, 0);
    expect(shard.version).toBe(2);
    expect(taken.map((s) => [s.version, s.generation])).toEqual([
      [2, 1],
      [2, 2],
    ]);
    expect(bits(taken[1]!.parameters)).toEqual(bits(shard.parameters));
    expect(bits(taken[1]!.parameters)).not.toEqual(bits(taken[0]!.parameters));
    // Once, as before.
    shard.requestSnapshot(2);
    expect(taken).toHaveLength(2);
  });

  it("of the version gone back to carry the generation it was reached in, not the abandoned one's", () => {
    const shard = openShard(config(1, 2));
    step(shard);
    shard.configure(config(2, 2));
    shard.openGeneration(2, 1);
    step(shard);
    expect([shard.version, shard.snapshot().generation]).toEqual([2, 2]);
    shard.configure(config(3, 1));
    shard.openGeneration(3, 1);
    expect([shard.version, shard.snapshot().generation]).toEqual([1, 1]);
  });

  it("asked for by the coordinator stay asked for when the shard goes back past them", () => {
    const shard = openShard(config(1, 2));
    const taken: Array<[number, number]> = [];
    shard.onSnapshot((snapshot) => taken.push([snapshot.version, snapshot.generation]));
    step(shard);
    shard.requestSnapshot(1);
    shard.requestSnapshot(2);
    step(shard);
    expect(taken).toEqual([
      [1, 1],
      [2, 1],
    ]);
    shard.configure(config(2, 1));
    shard.openGeneration(2, 1);
    // Version 1's snapshot still holds (the shard did not go back from it).
    shard.requestSnapshot(1);
    push(shard, 0);
    expect(taken).toEqual([
      [1, 1],
      [2, 1],
      [2, 2],
    ]);
  });
});
