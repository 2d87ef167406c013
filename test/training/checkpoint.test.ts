/**
 * Checkpoints and exact resume, with real processes and real signals: `trainfleet run`
 * checkpoints every K steps and keeps the last two; SIGTERM mid-training (sent once the
 * status stream shows progress) leaves a just-in-time checkpoint, and `trainfleet run
 * --resume` of that job folder ends with exactly the parameters of the uninterrupted run
 * (sync mode, float32, Adam: its optimizer state has to come back too); a corrupt
 * checkpoint file stops a resume before anything starts.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadCheckpoint, SampleCursor } from "@trainfleet/coordinator";
import { decodeShardCheckpoint } from "@trainfleet/paramserver";
import { firstDifference } from "@trainfleet/testing/fleet/compare-parameters";
import { expectAllExited } from "@trainfleet/testing/fleet/expect-all-exited";
import type { FleetResult } from "@trainfleet/testing/fleet/run-fleet";
import { cliMain, readToken, runFleet, trainfleet } from "@trainfleet/testing/fleet/run-fleet";
import { StatusEvents } from "@trainfleet/testing/fleet/status-events";
import { describe, expect, it } from "vitest";

const steps = 300;
const every = 100;
const seed = 5;
const flags = [
  "--workers",
  "2",
  "--shards",
  "2",
  "--hidden",
  "32",
  "--batch-size",
  "16",
  "--max-steps",
  String(steps),
  "--eval-samples",
  "100",
  "--backend",
  "cpu",
  "--seed",
  String(seed),
  "--optimizer",
  "adam",
  "--lr",
  "0.001",
  "--chunk-bytes",
  "16384",
  "--checkpoint-every",
  String(every),
  "--ledger-audit",
];

function readParameters(folder: string): Float32Array {
  const bytes = readFileSync(join(folder, "parameters.f32"));
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** The JSON log lines of one process of a job folder. */
function logLines(folder: string, name: string): Array<Record<string, unknown>> {
  return readFileSync(join(folder, name), "utf8")
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Where the sample ledger stands after `count` steps of this job. */
function ledgerAfter(count: number) {
  const cursor = new SampleCursor(seed, 60_000, 32);
  for (let i = 0; i < count; i++) cursor.next(2);
  return cursor.position();
}

/** The lines of a job folder's ledger audit (--ledger-audit). */
function ledgerOf(folder: string): Array<{ step: number; epoch: number; generation: number; sampleIndices: number[][] }> {
  return readFileSync(join(folder, "ledger.jsonl"), "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as { step: number; epoch: number; generation: number; sampleIndices: number[][] });
}

let uninterrupted: FleetResult | undefined;

describe("checkpoints of a local fleet", () => {
  it(`an uninterrupted run checkpoints every ${every} steps, keeps the last two, and their files verify`, async () => {
    const fleet = await runFleet(flags);
    expect(fleet.code, fleet.output).toBe(0);
    uninterrupted = fleet;
    const dir = join(fleet.folder, "checkpoints");
    // Beside them, the coordinator's state (a restarted coordinator's way back here): the job has finished.
    expect(readdirSync(dir).sort()).toEqual([
      "checkpoint-200.json",
      "checkpoint-300.json",
      "coordinator-state.json",
      "latest.json",
      "shard-0-v200.ckpt",
      "shard-0-v300.ckpt",
      "shard-1-v200.ckpt",
      "shard-1-v300.ckpt",
    ]);
    expect(JSON.parse(readFileSync(join(dir, "coordinator-state.json"), "utf8"))).toMatchObject({
      format: "trainfleet-coordinator-state/1",
      jobId: "fashion-mnist",
      finished: true,
    });
    // Loading checks every file's sha256.
    const latest = await loadCheckpoint(dir);
    expect(latest.path).toBe(join(dir, "checkpoint-300.json"));
    expect(latest.manifest).toMatchObject({
      jobId: "fashion-mnist",
      version: 300,
      generation: 1,
      worldSize: 2,
      backends: ["cpu", "cpu"],
      reason: "periodic",
      ledger: ledgerAfter(300),
    });
    const previous = await loadCheckpoint(join(dir, "checkpoint-200.json"));
    expect(previous.manifest).toMatchObject({ version: 200, ledger: ledgerAfter(200) });
    // The slices of the last checkpoint hold exactly the trained parameters, and Adam's m and v.
    const slices = latest.files.map((file) => decodeShardCheckpoint(new Uint8Array(readFileSync(file)), file));
    expect(slices.map(({ header }) => [header.shardIndex, header.version, header.optimizer, header.stateArrays, header.range])).toEqual(
      latest.manifest.shards.map((shard) => [shard.index, 300, "adam", 2, { begin: shard.begin, end: shard.end }]),
    );
    const joined = new Float32Array(fleet.parameters.length);
    for (const { snapshot } of slices) joined.set(snapshot.parameters, snapshot.range.begin);
    expect(firstDifference(joined, fleet.parameters)).toBe(-1);
    for (const { snapshot } of slices) for (const state of snapshot.state) expect(state.some((v) => v !== 0)).toBe(true);
    // The ledger audit: every step once, in order, each taking the samples the ledger plans,
    // and no sample twice within the epoch.
    const ledger = ledgerOf(fleet.folder);
    expect(ledger.map((record) => record.step)).toEqual(Array.from({ length: steps }, (_, step) => step));
    const cursor = new SampleCursor(seed, 60_000, 32);
    for (const record of ledger) expect(record.sampleIndices).toEqual(cursor.next(2).sampleIndices.map((indices) => Array.from(indices)));
    const used = ledger.flatMap((record) => record.sampleIndices.flat());
    expect(new Set(used).size).toBe(steps * 2 * 16);
  }, 150_000);

  it("SIGTERM mid-training writes a just-in-time checkpoint; `trainfleet run --resume` of the folder ends bitwise equal to the uninterrupted run", async () => {
    expect(uninterrupted, "needs the uninterrupted run of the test before").toBeDefined();
    const jobsDir = mkdtempSync(join(tmpdir(), "trainfleet-checkpoint-"));
    const child = spawn(process.execPath, [cliMain, "run", "--jobs-dir", jobsDir, ...flags], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = once(child, "exit") as Promise<[number | null]>;
    const statusUrl = await new Promise<string>((resolve, reject) => {
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        const match = /^status: (\S+)/m.exec(output);
        if (match !== null) resolve(match[1]!);
      });
      void exited.then(() => reject(new Error(`trainfleet run exited before its coordinator listened:\n${output}`)));
    });
    // A real progress signal: the coordinator's own status stream past step 20, read with the job's read token.
    const events = await StatusEvents.open(`${statusUrl}/watch`, { token: readToken(join(jobsDir, readdirSync(jobsDir)[0]!)) });
    try {
      await events.waitFor("step 20", (status) => status.step >= 20);
    } finally {
      events.close();
    }
    child.kill("SIGTERM");
    const [code] = await exited;
    expect(code, output).toBe(143);
    const folder = join(jobsDir, readdirSync(jobsDir)[0]!);
    const stopped =
      /FAILED \(Terminated\): the coordinator was asked to stop \(SIGTERM or SIGINT\); checkpoint of step (\d+) written: (\S+)\. /.exec(
        output,
      );
    expect(stopped, output).not.toBeNull();
    expect(output).toContain(`resume with: trainfleet run --resume ${folder}\n`);
    expectAllExited(folder);
    const jit = await loadCheckpoint(join(folder, "checkpoints"));
    const version = jit.manifest.version;
    expect([jit.path, version]).toEqual([stopped![2], Number(stopped![1])]);
    expect(jit.manifest).toMatchObject({ reason: "terminated", ledger: ledgerAfter(version) });
    // Mid-training: past the signal's step, and well before the end.
    expect(version).toBeGreaterThanOrEqual(20);
    expect(version).toBeLessThan(every);

    // The same compute backend: tf.js backends differ in the last bits of a gradient.
    const resumed = await trainfleet(["run", "--resume", folder, "--backend", "cpu", "--ledger-audit"]);
    expect(resumed.code, resumed.output).toBe(0);
    expect(resumed.output).toContain(`resuming at step ${version} from ${jit.path}`);
    expect(resumed.output).toMatch(/^SUCCEEDED: test accuracy \d+\.\d\d% .* after 300 steps/m);
    // It did resume: the coordinator started at the checkpoint's step and each shard from its file...
    const coordinatorLog = logLines(folder, "coordinator.resume-1.log");
    expect(coordinatorLog.find((line) => line["msg"] === "job resumed from its checkpoint")).toMatchObject({
      step: version,
      resumedFrom: jit.path,
    });
    for (const shard of [0, 1]) {
      expect(
        logLines(folder, `ps-${shard}.resume-1.log`).find((line) => line["msg"] === "shard restored from its checkpoint"),
      ).toMatchObject({ version, path: jit.files[shard] });
    }
    // ...and ended exactly where the uninterrupted run did, having used exactly its samples:
    // none repeated or skipped across the stop (the steps handed out before it completed first).
    expect(firstDifference(readParameters(folder), uninterrupted!.parameters)).toBe(-1);
    expect(ledgerOf(folder)).toEqual(ledgerOf(uninterrupted!.folder));
    expect(JSON.parse(readFileSync(join(folder, "parameters.json"), "utf8"))).toMatchObject({ version: 300 });
    // The first run's logs are still there, next to the resumed run's.
    expect(logLines(folder, "coordinator.log").some((line) => String(line["msg"]).includes("checkpoint of step"))).toBe(true);
    expect(
      readdirSync(join(folder, "checkpoints"))
        .filter((name) => name.endsWith(".json"))
        .sort(),
    ).toEqual(["checkpoint-200.json", "checkpoint-300.json", "coordinator-state.json", "latest.json"]);
    expectAllExited(folder);
  }, 180_000);

  it("a corrupt checkpoint file stops a resume before anything starts, naming the file and the checksum mismatch", async () => {
    expect(uninterrupted, "needs the uninterrupted run of the first test").toBeDefined();
    const folder = mkdtempSync(join(tmpdir(), "trainfleet-corrupt-"));
    cpSync(uninterrupted!.folder, folder, { recursive: true });
    const file = join(folder, "checkpoints", "shard-1-v300.ckpt");
    const bytes = readFileSync(file);
    bytes[bytes.byteLength - 5]! ^= 0x40;
    writeFileSync(file, bytes);
    const before = readdirSync(folder).sort();
    const mismatch = `checkpoint file ${file} (shard 1 of ${join(folder, "checkpoints", "checkpoint-300.json")}): sha256 mismatch: the file's is `;

    const run = await trainfleet(["run", "--resume", folder]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`trainfleet: ${mismatch}`);
    expect(run.stderr).toContain("the file is corrupt or was changed, so resume from another checkpoint (DATA_LOSS)");
    // Nothing started: no process, no log.
    expect(readdirSync(folder).sort()).toEqual(before);

    // The coordinator checks on its own too (as it must when started without `trainfleet run`).
    const coordinator = await trainfleet(["coordinator", "--insecure", "--listen", "127.0.0.1:0", "--resume", join(folder, "checkpoints")]);
    expect(coordinator.code).toBe(1);
    expect(coordinator.stderr).toContain(mismatch);
    expect(coordinator.output).not.toContain("coordinator listening");

    const flagged = await trainfleet(["run", "--resume", folder, "--workers", "3"]);
    expect([flagged.code, flagged.stderr]).toEqual([1, "trainfleet: --resume continues the checkpoint's job as it was; drop --workers\n"]);
  }, 60_000);
});
