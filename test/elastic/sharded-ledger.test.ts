/**
 * Exactly once on a sharded dataset, with real processes and a real signal: the UCI digits
 * converted to Parquet in 4 files of several blocks each, trained by 3 workers (min 1) that
 * open the data on their first assignment and read only the blocks their steps need.
 * Mid-epoch one worker gets SIGKILL; the other two go on (a new generation, ranks
 * renumbered, the step in flight handed out again) and the job completes. The ledger audit,
 * each global index mapped to (file, record) by the manifest's prefix sums, shows every
 * record of every file used exactly once in each epoch, the epoch of the kill included.
 */
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { DatasetManifest } from "@trainfleet/artifacts";
import { JobPhase, WorkerState } from "@trainfleet/proto";
import { convertDigits, DIGITS_RECORDS } from "@trainfleet/testing/fixtures/digits-dataset";
import { processGroup } from "@trainfleet/testing/fleet/fleet-process";
import { StatusEvents } from "@trainfleet/testing/fleet/status-events";
import { afterAll, describe, expect, it } from "vitest";

const workers = 3;
const batchSize = 4;
const epochs = 2;
/** Small global batches make many short steps: the kill lands well inside the first epoch. */
const stepsPerEpoch = Math.ceil(DIGITS_RECORDS / (workers * batchSize));
/** The step after which the worker is killed: a quarter into the first epoch. */
const killAfterStep = Math.floor(stepsPerEpoch / 4);

const { start, stop: stopProcesses } = processGroup();
let events: StatusEvents | undefined;
let datasetDir: string | undefined;
afterAll(async () => {
  events?.close();
  await stopProcesses();
  if (datasetDir !== undefined) await rm(datasetDir, { recursive: true, force: true });
});

interface LedgerLine {
  step: number;
  epoch: number;
  generation: number;
  sampleIndices: number[][];
}

/** Global index -> (file, record): the files in manifest order, each holding its `records` in order. */
function recordLocation(manifest: DatasetManifest): (index: number) => { file: string; record: number } {
  const starts: number[] = [];
  let total = 0;
  for (const file of manifest.files) {
    starts.push(total);
    total += file.records;
  }
  return (index) => {
    expect(index, "a sample index inside the dataset").toBeGreaterThanOrEqual(0);
    expect(index, "a sample index inside the dataset").toBeLessThan(total);
    let f = starts.length - 1;
    while (starts[f]! > index) f--;
    return { file: manifest.files[f]!.path, record: index - starts[f]! };
  };
}

describe("a 3-worker job on a sharded Parquet dataset that loses a worker to SIGKILL mid-epoch", () => {
  it("completes on the other two, and the ledger shows every (file, record) exactly once per epoch across the kill", async () => {
    const dataset = await convertDigits({ recordsPerFile: 450, recordsPerBlock: 75 });
    datasetDir = dataset.dir;
    const manifest = JSON.parse(readFileSync(dataset.train.path, "utf8")) as DatasetManifest;
    // The dataset is what the test claims: 4 files of several blocks, every record of the CSV in one.
    expect(manifest.fileFormat).toBe("parquet");
    expect(manifest.files.map((file) => [file.records, file.blocks.length])).toEqual([
      [450, 6],
      [450, 6],
      [450, 6],
      [447, 6],
    ]);
    expect(manifest.records).toBe(DIGITS_RECORDS);

    const ledgerPath = join(dataset.dir, "ledger.jsonl");
    const coordinator = start("coordinator", [
      "coordinator",
      "--insecure",
      ...["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--linger-ms", "60000", "--lease-ms", "3000"],
      ...["--ledger-audit", ledgerPath, "--job-id", "sharded-ledger", "--dataset", dataset.train.path, "--hidden", "32"],
      ...["--workers", String(workers), "--min-workers", "1", "--shards", "1", "--batch-size", String(batchSize)],
      ...["--epochs", String(epochs), "--eval-samples", "200", "--seed", "5", "--optimizer", "adam", "--lr", "0.002"],
    ]);
    const address = (await coordinator.log("coordinator listening")).address as string;
    const jobUrl = (await coordinator.log("status API listening")).url as string;
    events = await StatusEvents.open(`${jobUrl}/watch`);
    start("ps-0", ["ps", "--insecure", "--coordinator", address, "--shard-index", "0"]);
    const fleet = Array.from({ length: workers }, (_, i) =>
      start(`worker-${i}`, ["worker", "--insecure", "--coordinator", address, "--backend", "cpu", "--host", `worker-${i}`]),
    );

    // Killed after a step completes, not after a sleep: the generation-1 rank 1 worker, mid-way through epoch 0.
    await events.waitFor(`step ${killAfterStep}`, (s) => s.phase === JobPhase.RUNNING && s.step >= killAfterStep);
    const ranks = await Promise.all(fleet.map(async (w) => (await w.log("assigned a rank")).rank as number));
    const victim = fleet[ranks.indexOf(1)]!;
    victim.kill("SIGKILL");
    expect(await victim.exited).toEqual({ code: null, signal: "SIGKILL" });
    const shrunk = await events.waitFor("the second generation", (s) => s.generation === 2 && s.reason === "Training");
    expect(shrunk.status.message).toMatch(/on 2 workers \(generation 2\)/);
    expect(shrunk.status.workers.find((w) => w.host === victim.name)?.state).toBe(WorkerState.LOST);

    await events.ended;
    const final = events.events.at(-1)!.status;
    expect(final).toMatchObject({ phase: JobPhase.SUCCEEDED, generation: 2, step: epochs * stepsPerEpoch });
    for (const survivor of fleet.filter((w) => w !== victim)) expect(await survivor.exited).toEqual({ code: 0, signal: null });

    const ledger = readFileSync(ledgerPath, "utf8")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as LedgerLine);
    // Every step once, in order; 3 ranks before the kill, 2 after.
    expect(ledger.map((line) => line.step)).toEqual(Array.from({ length: epochs * stepsPerEpoch }, (_, i) => i));
    expect(ledger.map((line) => line.epoch)).toEqual(ledger.map((line) => Math.floor(line.step / stepsPerEpoch)));
    expect(new Set(ledger.map((line) => `${line.generation}:${line.sampleIndices.length}`))).toEqual(new Set(["1:3", "2:2"]));
    // The kill was mid-epoch: the epoch of the first generation-2 step also holds generation-1 steps.
    const firstAfterKill = ledger.find((line) => line.generation === 2)!;
    expect(firstAfterKill.step % stepsPerEpoch).not.toBe(0);
    const epochOfKill = ledger.filter((line) => line.epoch === firstAfterKill.epoch);
    expect(new Set(epochOfKill.map((line) => line.generation))).toEqual(new Set([1, 2]));

    const locate = recordLocation(manifest);
    for (let epoch = 0; epoch < epochs; epoch++) {
      const uses = new Map<string, number>();
      for (const line of ledger.filter((l) => l.epoch === epoch)) {
        for (const index of line.sampleIndices.flat()) {
          const { file, record } = locate(index);
          const key = `${file}#${record}`;
          uses.set(key, (uses.get(key) ?? 0) + 1);
        }
      }
      const twice = [...uses].filter(([, count]) => count !== 1);
      expect(twice, `epoch ${epoch}: (file, record) used more than once`).toEqual([]);
      expect(uses.size, `epoch ${epoch}: every record of every file`).toBe(DIGITS_RECORDS);
      for (const file of manifest.files) {
        const used = [...uses.keys()].filter((key) => key.startsWith(`${file.path}#`)).length;
        expect(used, `epoch ${epoch}: records of ${file.path}`).toBe(file.records);
      }
    }
    coordinator.kill("SIGTERM");
    expect((await coordinator.exited).signal).toBeNull();
  }, 120_000);
});
