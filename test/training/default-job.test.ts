/**
 * The main job as `npm start` runs it (every default: 2 workers, 2 shards, Fashion-MNIST,
 * the MLP, 3 epochs, the backend chosen automatically) reaches the accuracy the README
 * promises. About a minute and a half on 2 cores.
 */

import { runFleet } from "@trainfleet/testing/fleet/run-fleet";
import { expect, it } from "vitest";

it("the default job reaches at least 85% test accuracy on Fashion-MNIST within 3 epochs", async () => {
  const fleet = await runFleet([], 600_000);
  expect(fleet.code, fleet.output).toBe(0);
  const match = /SUCCEEDED: test accuracy (\d+\.\d+)% \(test loss [\d.]+\) after (\d+) steps/.exec(fleet.output);
  expect(match, fleet.output).not.toBeNull();
  expect(Number(match![1])).toBeGreaterThanOrEqual(85);
  // 3 epochs of 60000 samples in global batches of 2 x 64.
  expect(Number(match![2])).toBe(3 * Math.ceil(60000 / 128));
  expect(fleet.output).toMatch(
    /job fashion-mnist: mlp 784-256-10 \(203,530 parameters\), 2 workers x batch 64, 2 parameter-server shards, adam lr 0\.001, 3 epochs/,
  );
}, 600_000);
