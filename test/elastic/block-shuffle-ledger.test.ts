/**
 * Block shuffle keeps exactly once across a worker's loss, with real processes and a real
 * signal: the UCI digits in Parquet blocks of 75 records, trained by 3 workers with
 * `--shuffle block` (the window is the dataset's block size, pinned from the manifest).
 * While all 3 train, each rank's slices come from windows no other rank touches; mid-epoch
 * one worker gets SIGKILL and the other two finish the epoch on the same steps split two
 * ways. The ledger audit shows every record exactly once in the epoch.
 */
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { DatasetManifest } from "@trainfleet/artifacts";
import { JobPhase } from "@trainfleet/proto";
import { convertDigits, DIGITS_RECORDS } from "@trainfleet/testing/fixtures/digits-dataset";
import { processGroup } from "@trainfleet/testing/fleet/fleet-process";
import { StatusEvents } from "@trainfleet/testing/fleet/status-events";
import { afterAll, describe, expect, it } from "vitest";

const workers = 3;
const batchSize = 4;
const recordsPerBlock = 75;
const stepsPerEpoch = Math.ceil(DIGITS_RECORDS / (workers * batchSize));
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

describe("a 3-worker job with block shuffle that loses a worker to SIGKILL mid-epoch", () => {
  it("reads disjoint blocks per rank while all 3 train, and uses every record exactly once in the epoch across the kill", async () => {
    const dataset = await convertDigits({ recordsPerFile: 450, recordsPerBlock });
    datasetDir = dataset.dir;
    const manifest = JSON.parse(readFileSync(dataset.train.path, "utf8")) as DatasetManifest;
    // Files of whole blocks: global windows of 75 are the blocks.
    expect(manifest.files.map((file) => file.records)).toEqual([450, 450, 450, 447]);
    expect(manifest.files.flatMap((file) => file.blocks.map((block) => block.records)).filter((records) => records !== 75)).toEqual([72]);

    const ledgerPath = join(dataset.dir, "ledger.jsonl");
    const coordinator = start("coordinator", [
      "coordinator",
      "--insecure",
      ...["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--linger-ms", "60000", "--lease-ms", "3000"],
      ...["--ledger-audit", ledgerPath, "--job-id", "block-shuffle-ledger", "--dataset", dataset.train.path, "--hidden", "16"],
      ...["--workers", String(workers), "--min-workers", "1", "--shards", "1", "--batch-size", String(batchSize)],
      ...["--epochs", "1", "--eval-samples", "100", "--seed", "3", "--shuffle", "block"],
    ]);
    const address = (await coordinator.log("coordinator listening")).address as string;
    const jobUrl = (await coordinator.log("status API listening")).url as string;
    events = await StatusEvents.open(`${jobUrl}/watch`);
    start("ps-0", ["ps", "--insecure", "--coordinator", address, "--shard-index", "0"]);
    const fleet = Array.from({ length: workers }, (_, i) =>
      start(`worker-${i}`, ["worker", "--insecure", "--coordinator", address, "--backend", "cpu", "--host", `worker-${i}`]),
    );

    await events.waitFor(`step ${killAfterStep}`, (s) => s.phase === JobPhase.RUNNING && s.step >= killAfterStep);
    const ranks = await Promise.all(fleet.map(async (w) => (await w.log("assigned a rank")).rank as number));
    const victim = fleet[ranks.indexOf(2)]!;
    victim.kill("SIGKILL");
    expect(await victim.exited).toEqual({ code: null, signal: "SIGKILL" });
    await events.waitFor("the second generation", (s) => s.generation === 2 && s.reason === "Training");
    await events.ended;
    expect(events.events.at(-1)!.status).toMatchObject({ phase: JobPhase.SUCCEEDED, generation: 2, step: stepsPerEpoch });

    const ledger = readFileSync(ledgerPath, "utf8")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as LedgerLine);
    expect(ledger.map((line) => line.step)).toEqual(Array.from({ length: stepsPerEpoch }, (_, i) => i));
    expect(new Set(ledger.map((line) => `${line.generation}:${line.sampleIndices.length}`))).toEqual(new Set(["1:3", "2:2"]));

    // Generation 1 (3 ranks = 3 lanes, the kill a quarter into the epoch, far from its tail): no block read by two ranks.
    const blocksOfRank = [new Set<number>(), new Set<number>(), new Set<number>()];
    for (const line of ledger.filter((l) => l.generation === 1)) {
      line.sampleIndices.forEach((indices, rank) => {
        for (const index of indices) blocksOfRank[rank]!.add(Math.floor(index / recordsPerBlock));
      });
    }
    const shared = blocksOfRank.flatMap((blocks, rank) =>
      [...blocks].filter((block) => blocksOfRank.some((other, otherRank) => otherRank !== rank && other.has(block))),
    );
    expect(shared).toEqual([]);
    // Each rank read only a few blocks so far: about a quarter of its third of the 24.
    for (const blocks of blocksOfRank) expect(blocks.size).toBeLessThanOrEqual(4);

    // The epoch, across the kill: every record once.
    const used = ledger.flatMap((line) => line.sampleIndices.flat());
    expect(used.length).toBe(DIGITS_RECORDS);
    expect(new Set(used).size).toBe(DIGITS_RECORDS);
    expect(used.every((index) => index >= 0 && index < DIGITS_RECORDS)).toBe(true);
    coordinator.kill("SIGTERM");
    expect((await coordinator.exited).signal).toBeNull();
  }, 120_000);
});
