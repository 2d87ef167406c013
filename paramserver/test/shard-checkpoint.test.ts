/**
 * A shard's checkpoint slice: snapshot and restore give back the parameters, the optimizer
 * state and the version, so that training continues bit for bit; snapshots are taken at
 * the scheduled versions and are copies; the file's header is checked against the shard
 * that restores it, and its sha256 against the manifest's.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { Code, ModelSpecSchema, OptimizerSpecSchema, PushRequestSchema } from "@trainfleet/proto";
import { sha256Hex, silentLogger } from "@trainfleet/runtime";
import { dataShape, parameterLayout } from "@trainfleet/spec";
import { rejection } from "@trainfleet/testing/rejection";
import { describe, expect, it } from "vitest";
import type { CheckpointWritten } from "../src/checkpoint-files.js";
import { createCheckpointWriter, readShardCheckpoint } from "../src/checkpoint-files.js";
import { checkShardCheckpoint, decodeShardCheckpoint, encodeShardCheckpoint } from "../src/checkpoint-format.js";
import { ParameterShard } from "../src/parameter-shard.js";
import type { ShardConfig } from "../src/shard-config.js";
import type { ShardSnapshot, ShardState } from "../src/shard-snapshot.js";
import { bits, errorOf } from "./support.js";

const layout = parameterLayout(
  create(ModelSpecSchema, { kind: { case: "mlp", value: { hiddenUnits: [4] } } }),
  dataShape({ name: "fashion-mnist", manifest: "" }),
);

const optimizers: Record<string, MessageInitShape<typeof OptimizerSpecSchema>> = {
  sgd: { kind: { case: "sgd", value: { learningRate: 0.1, momentum: 0 } } },
  "sgd-momentum": { kind: { case: "sgd", value: { learningRate: 0.1, momentum: 0.9 } } },
  adam: { kind: { case: "adam", value: { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } } },
};

function config(overrides: Partial<ShardConfig> & { optimizerName?: string } = {}): ShardConfig {
  const { optimizerName = "adam", ...rest } = overrides;
  return {
    jobId: "job-a",
    generation: 1,
    worldSize: 2,
    range: { begin: 100, end: 403 },
    chunkElements: 64,
    optimizer: create(OptimizerSpecSchema, optimizers[optimizerName]!),
    layout,
    seed: 3,
    ...rest,
  };
}

function shardWith(c: ShardConfig): ParameterShard {
  const shard = new ParameterShard();
  shard.configure(c);
  shard.openGeneration(c.generation, 0);
  return shard;
}

/** A shard of `c` restored from `snapshot` while closed, then opened at its version (as the coordinator does). */
function restoredShard(c: ShardConfig, snapshot: ShardState): ParameterShard {
  const shard = new ParameterShard();
  shard.configure(c);
  shard.restore(snapshot);
  shard.openGeneration(c.generation, snapshot.version);
  return shard;
}

/** One whole step from both ranks: deterministic gradients that differ by step, rank and element. */
function train(shard: ParameterShard, steps: number): void {
  const c = shard.config!;
  for (let n = 0; n < steps; n++) {
    const step = shard.version;
    for (let rank = 0; rank < c.worldSize; rank++) {
      const push = shard.beginPush();
      for (let begin = c.range.begin; begin < c.range.end; begin += c.chunkElements) {
        const end = Math.min(c.range.end, begin + c.chunkElements);
        const values = Float32Array.from({ length: end - begin }, (_, i) => Math.sin((begin + i) * 0.37 + step * 1.3 + rank) * (1 + step));
        push.add(
          create(PushRequestSchema, {
            jobId: c.jobId,
            generation: 1,
            step,
            rank,
            offset: BigInt(begin),
            data: new Uint8Array(values.buffer),
          }),
        );
      }
      push.commit();
    }
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.byteLength;
  }
  return bytes;
}

describe.each(Object.keys(optimizers))("snapshot and restore with %s", (optimizerName) => {
  it("round-trips through the file format and continues bit for bit", () => {
    const original = shardWith(config({ optimizerName }));
    train(original, 3);
    const snapshot = original.snapshot();
    const { header, snapshot: decoded } = decodeShardCheckpoint(concat(encodeShardCheckpoint(snapshot, 1)), "shard-1-v3.ckpt");
    expect(header).toEqual({
      formatVersion: 1,
      shardIndex: 1,
      jobId: "job-a",
      version: 3,
      range: { begin: 100, end: 403 },
      optimizer: optimizerName,
      stateArrays: { sgd: 0, "sgd-momentum": 1, adam: 2 }[optimizerName],
      elements: 303,
    });
    expect(bits(decoded.parameters)).toEqual(bits(original.parameters));
    expect(decoded.state.map(bits)).toEqual(snapshot.state.map(bits));

    const restored = restoredShard(config({ optimizerName }), decoded);
    expect(restored.version).toBe(3);
    expect(bits(restored.parameters)).toEqual(bits(original.parameters));
    expect(restored.snapshot().state.map(bits)).toEqual(original.snapshot().state.map(bits));
    train(original, 2);
    train(restored, 2);
    expect(restored.version).toBe(5);
    expect(bits(restored.parameters)).toEqual(bits(original.parameters));
  });
});

describe("restore", () => {
  it("needs the optimizer state: the same parameters with fresh state train differently (Adam)", () => {
    const original = shardWith(config());
    train(original, 3);
    const snapshot = original.snapshot();
    expect(snapshot.state.every((values) => values.some((v) => v !== 0))).toBe(true);
    const stateless = restoredShard(config(), { ...snapshot, state: snapshot.state.map((values) => new Float32Array(values.length)) });
    train(original, 1);
    train(stateless, 1);
    expect(bits(stateless.parameters)).not.toEqual(bits(original.parameters));
  });

  it("refuses a snapshot of another job, range or optimizer, and any while the shard is open", () => {
    const snapshot = (() => {
      const shard = shardWith(config());
      train(shard, 1);
      return shard.snapshot();
    })();
    const fresh = () => {
      const shard = new ParameterShard();
      shard.configure(config());
      return shard;
    };
    expect(errorOf(() => fresh().restore({ ...snapshot, jobId: "job-b" })).message).toMatch(
      /cannot restore version 1: job "job-b", not "job-a"/,
    );
    expect(errorOf(() => fresh().restore({ ...snapshot, range: { begin: 0, end: 303 } })).message).toMatch(
      /range \[0, 303\), not \[100, 403\)/,
    );
    expect(errorOf(() => fresh().restore({ ...snapshot, optimizer: "sgd", state: [] })).message).toMatch(/optimizer sgd, not adam/);
    const open = shardWith(config());
    train(open, 1);
    const error = errorOf(() => open.restore(snapshot));
    expect([error.code, error.message]).toEqual([
      Code.FAILED_PRECONDITION,
      "cannot restore version 1: the shard is open for generation 1, and pulls may be reading version 1; restore after a new generation's ShardAssignment, before its open_generation",
    ]);
  });
});

describe("scheduled snapshots", () => {
  it("are taken at every multiple of everySteps and when the coordinator asks, once per version", () => {
    const shard = shardWith(config({ checkpointEverySteps: 2 }));
    const taken: number[] = [];
    shard.onSnapshot((snapshot) => taken.push(snapshot.version));
    train(shard, 5);
    expect(taken).toEqual([2, 4]);
    shard.requestSnapshot(5);
    shard.requestSnapshot(5);
    shard.requestSnapshot(7);
    train(shard, 3);
    expect(taken).toEqual([2, 4, 5, 6, 7, 8]);
    shard.requestSnapshot(8);
    expect(taken).toEqual([2, 4, 5, 6, 7, 8]);
    const late = errorOf(() => shard.requestSnapshot(3));
    expect([late.code, late.message]).toEqual([
      Code.FAILED_PRECONDITION,
      "version: a checkpoint of version 3 was asked for, but this shard is at version 8 already",
    ]);
  });

  it("start after the version a shard was restored at", () => {
    const source = shardWith(config());
    train(source, 4);
    const shard = restoredShard(config({ checkpointEverySteps: 2 }), source.snapshot());
    const taken: number[] = [];
    shard.onSnapshot((snapshot) => taken.push(snapshot.version));
    shard.requestSnapshot(4);
    train(shard, 2);
    expect(taken).toEqual([4, 6]);
  });

  it("are copies: the steps after them do not change what they hold", () => {
    const shard = shardWith(config({ checkpointEverySteps: 1 }));
    const taken: ShardSnapshot[] = [];
    const copies: number[][][] = [];
    shard.onSnapshot((snapshot) => {
      taken.push(snapshot);
      copies.push([bits(snapshot.parameters), ...snapshot.state.map(bits)]);
    });
    train(shard, 4);
    expect(taken.map((s) => s.version)).toEqual([1, 2, 3, 4]);
    expect(taken.map((s) => [bits(s.parameters), ...s.state.map(bits)])).toEqual(copies);
    expect(new Set(copies.map((c) => c[0]!.join())).size).toBe(4);
  });
});

describe("the checkpoint file", () => {
  const snapshot = (() => {
    const shard = shardWith(config());
    train(shard, 2);
    return shard.snapshot();
  })();
  const bytes = concat(encodeShardCheckpoint(snapshot, 0));
  const expected = { shardIndex: 0, jobId: "job-a", version: 2, range: { begin: 100, end: 403 }, optimizer: "adam" as const };

  it("is a header plus the parameters and Adam's m and v as float32", () => {
    expect(new TextDecoder().decode(bytes.subarray(0, 8))).toBe("TFSHCKPT");
    const headerBytes = new DataView(bytes.buffer).getUint32(12, true);
    expect(headerBytes % 8).toBe(0);
    expect(bytes.byteLength).toBe(headerBytes + 3 * 303 * 4);
    expect(Array.from(new Float32Array(bytes.slice(headerBytes, headerBytes + 303 * 4).buffer))).toEqual(Array.from(snapshot.parameters));
  });

  it.each([
    ["another job", { jobId: "job-b" }, /job id "job-a" \(the assignment: "job-b"\)/],
    ["another shard", { shardIndex: 1 }, /shard 0 \(the assignment: shard 1\)/],
    ["another version", { version: 3 }, /version 2 \(the assignment: 3\)/],
    ["another range", { range: { begin: 0, end: 303 } }, /range \[100, 403\) \(the assignment: \[0, 303\)\)/],
    ["another optimizer", { optimizer: "sgd-momentum" as const }, /optimizer adam \(the job's: sgd-momentum\)/],
  ])("that belongs to %s is refused, naming the file and what differs", (_name, difference, message) => {
    const { header } = decodeShardCheckpoint(bytes, "f.ckpt");
    expect(() => checkShardCheckpoint(header, expected, "/ckpt/shard-0-v2.ckpt")).not.toThrow();
    const error = errorOf(() => checkShardCheckpoint(header, { ...expected, ...difference }, "/ckpt/shard-0-v2.ckpt"));
    expect(error.code).toBe(Code.FAILED_PRECONDITION);
    expect(error.message).toMatch(/^checkpoint file \/ckpt\/shard-0-v2\.ckpt does not belong to this shard: it holds /);
    expect(error.message).toMatch(message);
  });

  it.each([
    ["a wrong magic", (b: Uint8Array) => b.set([88], 0), /not a trainfleet shard checkpoint \(magic "XFSHCKPT"/],
    [
      "another format version",
      (b: Uint8Array) => new DataView(b.buffer).setUint32(8, 2, true),
      /format version 2; this trainfleet reads version 1/,
    ],
    ["an unknown optimizer", (b: Uint8Array) => new DataView(b.buffer).setUint32(40, 9, true), /unknown optimizer code 9/],
    ["a wrong element count", (b: Uint8Array) => new DataView(b.buffer).setBigUint64(48, 5n, true), /5 elements for range \[100, 403\)/],
  ])("with %s is refused as corrupt", (_name, damage, message) => {
    const damaged = bytes.slice();
    damage(damaged);
    const error = errorOf(() => decodeShardCheckpoint(damaged, "/ckpt/shard-0-v2.ckpt"));
    expect(error.code).toBe(Code.DATA_LOSS);
    expect(error.message).toMatch(/^checkpoint file \/ckpt\/shard-0-v2\.ckpt: /);
    expect(error.message).toMatch(message);
  });

  it("cut short is refused as corrupt", () => {
    expect(errorOf(() => decodeShardCheckpoint(bytes.subarray(0, bytes.byteLength - 4), "x.ckpt")).message).toBe(
      `checkpoint file x.ckpt: ${bytes.byteLength - 4} bytes, the header describes ${bytes.byteLength}`,
    );
    expect(errorOf(() => decodeShardCheckpoint(bytes.subarray(0, 20), "x.ckpt")).message).toMatch(
      /20 bytes, too short for a checkpoint header/,
    );
  });

  it("is written whole with its sha256 reported, read back only when the sha256 matches", async () => {
    const folder = mkdtempSync(join(tmpdir(), "trainfleet-shard-ckpt-"));
    const reports: CheckpointWritten[] = [];
    const writer = createCheckpointWriter({
      folder,
      shardIndex: 0,
      logger: silentLogger,
      report: async (written) => void reports.push(written),
    });
    writer.write(snapshot);
    await writer.flush();
    const path = join(folder, "shard-0-v2.ckpt");
    const file = readFileSync(path);
    expect(reports).toEqual([{ version: 2, generation: 1, path, sha256: sha256Hex(file), bytes: file.byteLength, error: "" }]);
    expect(file.equals(bytes)).toBe(true);

    const restored = await readShardCheckpoint({ path, version: 2, sha256: reports[0]!.sha256 }, expected);
    expect(bits(restored.parameters)).toEqual(bits(snapshot.parameters));
    const wrongShard = await rejection(
      readShardCheckpoint({ path, version: 2, sha256: reports[0]!.sha256 }, { ...expected, shardIndex: 1 }),
    );
    expect(wrongShard.message).toMatch(/does not belong to this shard: it holds shard 0 \(the assignment: shard 1\)/);

    const damaged = Buffer.from(file);
    damaged[damaged.byteLength - 1]! ^= 1;
    writeFileSync(path, damaged);
    const error = await rejection(readShardCheckpoint({ path, version: 2, sha256: reports[0]!.sha256 }, expected));
    expect(error.code).toBe(Code.DATA_LOSS);
    expect(error.message).toBe(
      `checkpoint file ${path}: sha256 mismatch: the file's is ${sha256Hex(damaged)}, the manifest's ${reports[0]!.sha256}; the file is corrupt or was changed, so resume from another checkpoint`,
    );
  });

  it("that cannot be written is reported as an error", async () => {
    const folder = join(mkdtempSync(join(tmpdir(), "trainfleet-shard-ckpt-")), "file");
    writeFileSync(folder, "a file where the folder should be");
    const reports: CheckpointWritten[] = [];
    const writer = createCheckpointWriter({
      folder,
      shardIndex: 0,
      logger: silentLogger,
      report: async (written) => void reports.push(written),
    });
    writer.write(snapshot);
    await writer.flush();
    expect(reports).toHaveLength(1);
    expect(reports[0]!.error).toMatch(new RegExp(`^could not write ${folder}/shard-0-v2\\.ckpt: `));
  });
});
