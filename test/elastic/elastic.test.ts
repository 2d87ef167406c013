/**
 * Elastic training with real processes and real signals: a coordinator, two
 * parameter-server shards and four workers, each an OS process. Mid-training one worker
 * gets SIGKILL; later a new worker process joins. No surviving process restarts: the
 * coordinator makes a new generation for each change (ranks renumbered, the step in flight
 * handed out again over the new ranks), and the job finishes. The sample-ledger audit
 * shows every sample of the epoch used exactly once, and the test accuracy is within a
 * point of an undisturbed run of the same job (`trainfleet run`): the global batch is
 * fixed, so the two runs differ only in how each step's sum was split.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JobPhase, WorkerState } from "@trainfleet/proto";
import type { FleetProcess } from "@trainfleet/testing/fleet/fleet-process";
import { processGroup } from "@trainfleet/testing/fleet/fleet-process";
import { runFleet } from "@trainfleet/testing/fleet/run-fleet";
import { StatusEvents } from "@trainfleet/testing/fleet/status-events";
import { afterAll, describe, expect, it } from "vitest";

const jobFlags = [
  "--job-id",
  "elastic",
  "--workers",
  "4",
  "--shards",
  "2",
  "--hidden",
  "32",
  "--batch-size",
  "16",
  "--epochs",
  "1",
  "--eval-samples",
  "2000",
  "--seed",
  "3",
  "--optimizer",
  "adam",
  "--lr",
  "0.002",
];
/** Steps of the job: one epoch of 60000 samples in global batches of 4 x 16. */
const totalSteps = Math.ceil(60_000 / 64);

const { start, stop: stopProcesses } = processGroup();
let events: StatusEvents | undefined;
afterAll(async () => {
  events?.close();
  await stopProcesses();
});

interface LedgerLine {
  step: number;
  epoch: number;
  generation: number;
  sampleIndices: number[][];
}

describe("a 4-worker job that loses a worker to SIGKILL and gains another later", () => {
  it("finishes without restarting anyone, uses every sample once, and ends within a point of an undisturbed run", async () => {
    const folder = mkdtempSync(join(tmpdir(), "trainfleet-elastic-"));
    const ledgerPath = join(folder, "ledger.jsonl");
    const coordinator = start("coordinator", [
      "coordinator",
      "--insecure",
      "--listen",
      "127.0.0.1:0",
      "--http-listen",
      "127.0.0.1:0",
      "--linger-ms",
      "60000",
      "--lease-ms",
      "3000",
      "--ledger-audit",
      ledgerPath,
      ...jobFlags,
    ]);
    const address = (await coordinator.log("coordinator listening")).address as string;
    const jobUrl = (await coordinator.log("status API listening")).url as string;
    events = await StatusEvents.open(`${jobUrl}/watch`);
    for (const shard of [0, 1]) start(`ps-${shard}`, ["ps", "--insecure", "--coordinator", address, "--shard-index", String(shard)]);
    const worker = (name: string) => start(name, ["worker", "--insecure", "--coordinator", address, "--backend", "cpu"]);
    const workers = [0, 1, 2, 3].map((i) => worker(`worker-${i}`));
    await events.waitFor("training", (s) => s.phase === JobPhase.RUNNING && s.step >= 150);

    // Member ids go by registration order: the rank-2 worker of generation 1 is the one killed.
    const ids = await Promise.all(workers.map(async (w) => (await w.log("registered with the coordinator")).memberId as string));
    const rankOf = async (w: FleetProcess) => (await w.log("assigned a rank")).rank as number;
    const ranks = await Promise.all(workers.map(rankOf));
    const victim = workers[ranks.indexOf(2)]!;
    const victimId = ids[ranks.indexOf(2)]!;
    const survivors = workers.filter((w) => w !== victim);
    victim.kill("SIGKILL");
    expect(await victim.exited).toEqual({ code: null, signal: "SIGKILL" });
    const lost = await events.waitFor("the second generation", (s) => s.generation === 2 && s.reason === "Training");
    expect(lost.status.workers.find((w) => w.workerId === victimId)?.state).toBe(WorkerState.LOST);
    expect(lost.status.message).toMatch(/on 3 workers \(generation 2\)/);

    // The new process starts only now (and takes a few seconds to load): generation 2 trains meanwhile.
    const joiner = worker("worker-4");
    const joined = await events.waitFor("the third generation", (s) => s.generation === 3 && s.reason === "Training");
    expect(joined.status.message).toMatch(/on 4 workers \(generation 3\)/);
    expect(joined.status.step).toBeGreaterThan(lost.status.step);

    await events.ended;
    const final = events.events.at(-1)!.status;
    expect(final).toMatchObject({ phase: JobPhase.SUCCEEDED, generation: 3, step: totalSteps });
    expect(final.workers.map((w) => [w.workerId, w.state])).toEqual(
      ["worker-0", "worker-1", "worker-2", "worker-3", "worker-4"].map((id) => [
        id,
        id === victimId ? WorkerState.LOST : WorkerState.STOPPED,
      ]),
    );
    // The survivors are the processes that started: each exits 0 and registered once, and took every generation's rank in place.
    for (const survivor of [...survivors, joiner]) {
      expect(await survivor.exited).toEqual({ code: 0, signal: null });
      expect(survivor.lines.filter((l) => l.msg === "registered with the coordinator")).toHaveLength(1);
    }
    const rank3 = workers[ranks.indexOf(3)]!;
    expect(rank3.lines.filter((l) => l.msg === "assigned a rank").map((l) => [l.generation, l.rank, l.worldSize])).toEqual([
      [1, 3, 4],
      [2, 2, 3],
      [3, 2, 4],
    ]);

    // The ledger: every step once, in order, and the epoch's samples each exactly once.
    const ledger = readFileSync(ledgerPath, "utf8")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as LedgerLine);
    expect(ledger.map((line) => line.step)).toEqual(Array.from({ length: totalSteps }, (_, i) => i));
    const used = ledger.flatMap((line) => line.sampleIndices.flat());
    expect(used.length).toBe(60_000);
    expect(new Set(used).size).toBe(60_000);
    expect(new Set(ledger.map((line) => `${line.generation}:${line.sampleIndices.length}`))).toEqual(new Set(["1:4", "2:3", "3:4"]));

    const undisturbed = await runFleet([...jobFlags, "--backend", "cpu"], 240_000);
    expect(undisturbed.code, undisturbed.output).toBe(0);
    const accuracy = Number(/test accuracy (\d+\.\d+)%/.exec(undisturbed.output)![1]) / 100;
    expect(Math.abs(final.testAccuracy! - accuracy)).toBeLessThan(0.01);
  }, 480_000);
});
