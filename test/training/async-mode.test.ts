/**
 * Bounded-staleness async mode end to end (`trainfleet run --mode async`): workers do not
 * wait for each other, each shard applies each worker's gradient on its own, one version
 * per gradient. The job trains to a useful accuracy, every sample of the epoch is used
 * once (the ledger audit), and every shard applied every worker's part of every step
 * exactly once (its final version is steps x workers: a gradient refused as too stale is
 * computed again and applied once, never twice). The staleness bound itself is checked at
 * the shard (paramserver/test/shard-async.test.ts).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runFleet } from "@trainfleet/testing/fleet/run-fleet";
import { describe, expect, it } from "vitest";

describe("async mode", () => {
  it("trains without waiting, uses every sample once, and applies every gradient once per shard", async () => {
    const steps = Math.ceil(60_000 / 64);
    const fleet = await runFleet(
      [
        "--mode",
        "async",
        "--max-staleness",
        "8",
        "--workers",
        "2",
        "--shards",
        "2",
        "--hidden",
        "32",
        "--batch-size",
        "32",
        "--epochs",
        "1",
        "--eval-samples",
        "2000",
        "--backend",
        "cpu",
        "--ledger-audit",
      ],
      240_000,
    );
    expect(fleet.code, fleet.output).toBe(0);
    const accuracy = Number(/test accuracy (\d+\.\d+)%/.exec(fleet.output)![1]);
    expect(accuracy).toBeGreaterThan(75);
    expect(fleet.description.version).toBe(steps * 2);
    const ledger = readFileSync(join(fleet.folder, "ledger.jsonl"), "utf8")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as { step: number; sampleIndices: number[][] });
    expect(ledger.map((line) => line.step)).toEqual(Array.from({ length: steps }, (_, i) => i));
    const used = ledger.flatMap((line) => line.sampleIndices.flat());
    expect(used.length).toBe(60_000);
    expect(new Set(used).size).toBe(60_000);
  }, 300_000);

  it("refuses gradients more than maxStaleness versions behind with a clear reason, and each is computed again and applied once", async () => {
    const steps = 100;
    const fleet = await runFleet(
      [
        "--mode",
        "async",
        "--max-staleness",
        "1",
        "--workers",
        "3",
        "--shards",
        "2",
        "--hidden",
        "16",
        "--batch-size",
        "32",
        "--max-steps",
        String(steps),
        "--eval-samples",
        "500",
        "--backend",
        "cpu",
        "--log-level",
        "debug",
      ],
      240_000,
    );
    expect(fleet.code, fleet.output).toBe(0);
    const refusals = readdirSync(fleet.folder)
      .filter((name) => /^worker-\d+\.log$/.test(name))
      .flatMap((name) => readFileSync(join(fleet.folder, name), "utf8").split("\n"))
      .filter((line) => line.includes("gradient too stale for a shard; computing it again"))
      .map((line) => (JSON.parse(line) as { err: string }).err);
    // Three workers on one bound of 1: some gradient is always 2 or more versions behind.
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals[0]).toMatch(
      /^step: the gradient of rank \d was computed from version \d+, the shard is at \d+: \d+ versions stale, more than training.maxStaleness 1; pull and compute it again$/,
    );
    expect(fleet.description.version).toBe(steps * 3);
  }, 300_000);
});
