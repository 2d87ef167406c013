/**
 * The coordinator's side of checkpoints: the tracker expects the right versions with the
 * ledger position of each, writes a manifest once every shard has reported; the store keeps
 * the newest two, and loading a checkpoint checks every file before anything starts.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, JobSpecSchema, ReportCheckpointRequestSchema, type TrainfleetError } from "@trainfleet/proto";
import { sha256Hex, silentLogger } from "@trainfleet/runtime";
import { resolveJobSpec } from "@trainfleet/spec";
import { rejection } from "@trainfleet/testing/rejection";
import { describe, expect, it } from "vitest";
import type { CheckpointManifest } from "../src/checkpoints/checkpoint-manifest.js";
import { loadCheckpoint, writeCheckpoint } from "../src/checkpoints/checkpoint-store.js";
import { CheckpointTracker } from "../src/checkpoints/checkpoint-tracker.js";
import { resumePoint } from "../src/checkpoints/resume-point.js";
import { Coordinator } from "../src/job/coordinator.js";
import { planJob } from "../src/job/plan.js";
import { SampleCursor } from "../src/steps/sample-cursor.js";

const spec = resolveJobSpec(
  create(JobSpecSchema, { jobId: "ckpt", workers: { replicas: 2 }, parameterServers: { shards: 2 }, checkpoints: { everySteps: 3 } }),
);
const ranges = [
  { begin: 0, end: 100 },
  { begin: 100, end: 203 },
];

function folder(): string {
  return mkdtempSync(join(tmpdir(), "trainfleet-ckpt-"));
}

/** A shard file with some bytes, and the report a shard would send for it. */
function shardFile(dir: string, index: number, version: number, content = `shard ${index} v${version}`) {
  const path = join(dir, `shard-${index}-v${version}.ckpt`);
  writeFileSync(path, content);
  const bytes = new TextEncoder().encode(content);
  return create(ReportCheckpointRequestSchema, {
    memberId: `ps-${index}`,
    version,
    path,
    sha256: sha256Hex(bytes),
    bytes: BigInt(bytes.byteLength),
  });
}

function tracker(dir: string, startVersion = 0, generation = { generation: 1, worldSize: 2 }) {
  const written: CheckpointManifest[] = [];
  const checkpoints = new CheckpointTracker({
    folder: dir,
    spec,
    generation: () => generation,
    backends: () => ["cpu", "wasm"],
    ranges,
    startVersion,
    write: async (manifest) => {
      written.push(manifest);
      return writeCheckpoint(dir, manifest);
    },
    logger: silentLogger,
    now: () => 1_700_000_000_000,
  });
  return { checkpoints, written };
}

describe("CheckpointTracker", () => {
  it("drops what shards reported above the version a new generation goes on from, and ignores late reports of the abandoned generation", async () => {
    const dir = folder();
    const current = { generation: 1, worldSize: 3 };
    const { checkpoints, written } = tracker(dir, 0, current);
    const cursor = new SampleCursor(1, 1000, 14);
    for (let i = 0; i < 3; i++) cursor.next(3);
    checkpoints.cursorAt(cursor.position());
    // Shard 0 reached version 3 in generation 1; shard 1 did not: the generation goes on from 2.
    checkpoints.report(0, create(ReportCheckpointRequestSchema, { ...shardFile(dir, 0, 3, "abandoned"), generation: 1 }));
    Object.assign(current, { generation: 2, worldSize: 2 });
    checkpoints.generationOpened(2, 2);
    checkpoints.report(1, create(ReportCheckpointRequestSchema, { ...shardFile(dir, 1, 3), generation: 2 }));
    expect(written).toEqual([]);
    checkpoints.report(0, create(ReportCheckpointRequestSchema, { ...shardFile(dir, 0, 3, "abandoned, late"), generation: 1 }));
    expect(written).toEqual([]);
    checkpoints.report(0, create(ReportCheckpointRequestSchema, { ...shardFile(dir, 0, 3), generation: 2 }));
    await checkpoints.waitFor(3, 1_000);
    expect(written[0]).toMatchObject({ version: 3, generation: 2, worldSize: 2 });
    expect(written[0]!.shards[0]!.sha256).toBe(shardFile(dir, 0, 3).sha256);
  });

  it("expects a checkpoint every everySteps steps, with the ledger position there, and writes it once every shard reported", async () => {
    const dir = folder();
    const { checkpoints, written } = tracker(dir);
    const cursor = new SampleCursor(1, 1000, 14);
    const positions = [];
    for (let i = 0; i < 7; i++) {
      cursor.next(2);
      positions.push(cursor.position());
      checkpoints.cursorAt(cursor.position());
    }
    checkpoints.report(0, shardFile(dir, 0, 3));
    expect(written).toEqual([]);
    checkpoints.report(1, shardFile(dir, 1, 3));
    const path = await checkpoints.waitFor(3, 1_000);
    expect(path).toBe(join(dir, "checkpoint-3.json"));
    expect(written).toHaveLength(1);
    expect(written[0]).toMatchObject({
      version: 3,
      ledger: positions[2],
      reason: "periodic",
      worldSize: 2,
      backends: ["cpu", "wasm"],
      shards: [
        { index: 0, begin: 0, end: 100, file: "shard-0-v3.ckpt" },
        { index: 1, begin: 100, end: 203, file: "shard-1-v3.ckpt" },
      ],
    });
    expect(positions[2]).toEqual({ step: 3, epoch: 0, offset: 42 });
    expect(checkpoints.last).toEqual({ version: 3, path, createdUnixMs: 1_700_000_000_000 });
    // Version 6 is expected too; a report for a version nobody expects is ignored.
    checkpoints.report(0, shardFile(dir, 0, 5));
    checkpoints.report(0, shardFile(dir, 0, 6));
    checkpoints.report(1, shardFile(dir, 1, 6));
    await checkpoints.waitFor(6, 1_000);
    expect(written.map((m) => m.version)).toEqual([3, 6]);
  });

  it("takes the just-in-time checkpoint where the cursor stands, and says when it could not be made", async () => {
    const dir = folder();
    const { checkpoints } = tracker(dir, 3);
    const ok = checkpoints.takeOnStop(
      { step: 5, epoch: 0, offset: 70 },
      1_000,
      (version) => {
        checkpoints.report(0, shardFile(dir, 0, version));
        checkpoints.report(1, shardFile(dir, 1, version));
      },
      new Promise(() => {}),
    );
    expect(await ok).toBe(
      `checkpoint of step 5 written: ${join(dir, "checkpoint-5.json")}. Resume with --resume ${dir} (trainfleet run --resume takes the job folder)`,
    );
    const manifest = JSON.parse(readFileSync(join(dir, "checkpoint-5.json"), "utf8")) as { reason: string; ledger: unknown };
    expect(manifest).toMatchObject({ reason: "terminated", ledger: { step: 5, epoch: 0, offset: 70 } });

    const failed = await checkpoints.takeOnStop(
      { step: 7, epoch: 0, offset: 98 },
      1_000,
      (version) => {
        checkpoints.report(0, create(ReportCheckpointRequestSchema, { memberId: "ps-0", version, error: "disk full" }));
      },
      new Promise(() => {}),
    );
    expect(failed).toBe(
      `the checkpoint of step 7 could not be made (shard 0: disk full); the newest complete one is ${join(dir, "checkpoint-5.json")} (step 5)`,
    );
    const late = await checkpoints.takeOnStop(
      { step: 8, epoch: 0, offset: 112 },
      50,
      () => checkpoints.report(1, shardFile(dir, 1, 8)),
      new Promise(() => {}),
    );
    expect(late).toMatch(/^the checkpoint of step 8 could not be made \(no checkpoint slice from shard 0 within 50 ms\)/);
  });
});

describe("checkpoint folders", () => {
  async function writeVersions(dir: string, versions: number[]) {
    const { checkpoints } = tracker(dir);
    for (const version of versions) {
      checkpoints.expect({ step: version, epoch: 0, offset: version * 14 }, "periodic");
      checkpoints.report(0, shardFile(dir, 0, version));
      checkpoints.report(1, shardFile(dir, 1, version));
      await checkpoints.waitFor(version, 1_000);
    }
  }

  it("keep the newest two checkpoints and point latest.json at the newest", async () => {
    const dir = folder();
    await writeVersions(dir, [3, 6, 9]);
    expect(readdirSync(dir).sort()).toEqual([
      "checkpoint-6.json",
      "checkpoint-9.json",
      "latest.json",
      "shard-0-v6.ckpt",
      "shard-0-v9.ckpt",
      "shard-1-v6.ckpt",
      "shard-1-v9.ckpt",
    ]);
    expect(JSON.parse(readFileSync(join(dir, "latest.json"), "utf8"))).toEqual({ version: 9, manifest: "checkpoint-9.json" });
    const loaded = await loadCheckpoint(dir);
    expect(loaded.path).toBe(join(dir, "checkpoint-9.json"));
    expect(loaded.files).toEqual([join(dir, "shard-0-v9.ckpt"), join(dir, "shard-1-v9.ckpt")]);
    expect(loaded.manifest).toMatchObject({
      jobId: "ckpt",
      version: 9,
      backends: ["cpu", "wasm"],
      ledger: { step: 9, epoch: 0, offset: 126 },
    });
    expect(loaded.manifest.spec.checkpoints?.everySteps).toBe(3);
    expect((await loadCheckpoint(join(dir, "checkpoint-6.json"))).manifest.version).toBe(6);
    // The folder's latest.json itself stands for the folder (as --resume's help says).
    expect((await loadCheckpoint(join(dir, "latest.json"))).path).toBe(join(dir, "checkpoint-9.json"));
  });

  it("refuse to resume from a corrupt, missing or absent checkpoint, naming the file", async () => {
    const dir = folder();
    await writeVersions(dir, [3]);
    writeFileSync(join(dir, "shard-1-v3.ckpt"), "shard 1 v3 but changed");
    const corrupt = await rejection(loadCheckpoint(dir));
    expect(corrupt.code).toBe(Code.DATA_LOSS);
    expect(corrupt.message).toMatch(
      new RegExp(
        `^checkpoint file ${join(dir, "shard-1-v3.ckpt")} \\(shard 1 of ${join(dir, "checkpoint-3.json")}\\): sha256 mismatch: the file's is [0-9a-f]{64} \\(22 bytes\\), the manifest's [0-9a-f]{64} \\(10 bytes\\)`,
      ),
    );

    const empty = folder();
    const none = await rejection(loadCheckpoint(empty));
    expect([none.code, none.message]).toEqual([
      Code.NOT_FOUND,
      `${empty} holds no complete checkpoint (no latest.json); the job was stopped before its first checkpoint, so start it afresh`,
    ]);

    writeFileSync(join(empty, "checkpoint-1.json"), JSON.stringify({ format: "trainfleet-checkpoint/1", jobId: "ckpt", shards: [] }));
    const bad = await rejection(loadCheckpoint(join(empty, "checkpoint-1.json")));
    expect(bad.message).toBe(`checkpoint manifest ${join(empty, "checkpoint-1.json")}: ledger: must be an object`);
  });
});

describe("resumePoint", () => {
  const plan = planJob(spec, [
    { address: "a:1", dataAddress: "a:2" },
    { address: "b:1", dataAddress: "b:2" },
  ]);
  const manifest: CheckpointManifest = {
    jobId: "ckpt",
    version: 6,
    generation: 1,
    worldSize: 2,
    backends: ["cpu", "cpu"],
    ledger: { step: 6, epoch: 0, offset: 768 },
    reason: "terminated",
    createdUnixMs: 1,
    shards: plan.shardRanges.map((range, index) => ({
      index,
      begin: Number(range.begin),
      end: Number(range.end),
      file: `shard-${index}-v6.ckpt`,
      sha256: "0".repeat(64),
      bytes: 8,
    })),
    spec,
  };
  const checkpoint = { path: "/c/checkpoint-6.json", manifest, files: ["/c/shard-0-v6.ckpt", "/c/shard-1-v6.ckpt"] };

  it("starts the cursor, the steps and each shard where the checkpoint left them", () => {
    const warnings: string[] = [];
    expect(resumePoint(checkpoint, plan, ["cpu", "cpu"], (w) => warnings.push(w))).toEqual({
      version: 6,
      position: { step: 6, epoch: 0, offset: 768 },
      restores: [
        { path: "/c/shard-0-v6.ckpt", version: 6, sha256: "0".repeat(64) },
        { path: "/c/shard-1-v6.ckpt", version: 6, sha256: "0".repeat(64) },
      ],
      createdUnixMs: 1,
    });
    expect(warnings).toEqual([]);
    resumePoint(checkpoint, plan, ["cpu", "wasm"], (w) => warnings.push(w));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^the checkpoint was taken with compute backends cpu, cpu \(by rank\), the workers now use cpu, wasm/);
  });

  it("refuses a checkpoint whose shard ranges are not the plan's, and takes one of any world size (the global batch is the job's)", () => {
    const moved = {
      ...checkpoint,
      manifest: { ...manifest, shards: manifest.shards.map((s, i) => (i === 0 ? { ...s, end: s.end - 1 } : s)) },
    };
    expect(() => resumePoint(moved, plan, [], () => {})).toThrow(
      new RegExp(
        `^checkpoint manifest /c/checkpoint-6\\.json: shard 0 holds \\[0, ${Number(plan.shardRanges[0]!.end) - 1}\\), the plan gives it \\[0, ${plan.shardRanges[0]!.end}\\)`,
      ),
    );
    const wider = { ...checkpoint, manifest: { ...manifest, worldSize: 3, backends: ["cpu", "cpu", "cpu"] } };
    expect(resumePoint(wider, plan, ["cpu", "cpu", "cpu"], () => {}).position).toEqual({ step: 6, epoch: 0, offset: 768 });
  });
});

describe("a coordinator without a checkpoint folder", () => {
  it("refuses a job that asks for periodic checkpoints, naming the field and the fix", () => {
    let error: TrainfleetError | undefined;
    try {
      new Coordinator({ spec, leaseMs: 1_000, logger: silentLogger });
    } catch (caught) {
      error = caught as TrainfleetError;
    }
    expect([error?.code, error?.field, error?.message]).toEqual([
      Code.FAILED_PRECONDITION,
      "spec.checkpoints.everySteps",
      "spec.checkpoints.everySteps: 3, but this coordinator has no checkpoint folder; start it with --checkpoint-dir",
    ]);
    expect(() => new Coordinator({ spec, leaseMs: 1_000, logger: silentLogger, checkpointDir: folder() })).not.toThrow();
  });
});
