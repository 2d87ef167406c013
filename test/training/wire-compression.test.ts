/**
 * 16-bit values on the wire lose precision, so they cannot be exact; the promise is that
 * training stays close to float32 training. Stated tolerance, after 300 steps of the
 * default job (2 workers x 64, 2 shards, Adam), on the whole test set: accuracy within
 * 1.5 points and test loss within 3% of the float32 run.
 */

import type { FleetResult } from "@trainfleet/testing/fleet/run-fleet";
import { runFleet } from "@trainfleet/testing/fleet/run-fleet";
import { beforeAll, describe, expect, it } from "vitest";

const flags = ["--max-steps", "300", "--backend", "wasm"];

function metrics(fleet: FleetResult): { accuracy: number; loss: number } {
  const match = /test accuracy (\d+\.\d+)% \(test loss (\d+\.\d+)\)/.exec(fleet.output);
  expect(match, fleet.output).not.toBeNull();
  return { accuracy: Number(match![1]), loss: Number(match![2]) };
}

let float32: FleetResult;
beforeAll(async () => {
  float32 = await runFleet([...flags, "--wire-dtype", "float32"]);
  expect(float32.code, float32.output).toBe(0);
}, 120_000);

describe.each(["bfloat16", "float16"])("training with %s on the wire", (dtype) => {
  it("stays within the stated tolerance of float32 training, and really travels in 16 bits", async () => {
    const fleet = await runFleet([...flags, "--wire-dtype", dtype]);
    expect(fleet.code, fleet.output).toBe(0);
    const reference = metrics(float32);
    const compressed = metrics(fleet);
    expect(Math.abs(compressed.accuracy - reference.accuracy)).toBeLessThanOrEqual(1.5);
    expect(Math.abs(compressed.loss - reference.loss) / reference.loss).toBeLessThanOrEqual(0.03);
    // Not the float32 result: the parameters took a different (rounded) path.
    expect(Buffer.from(fleet.parameters.buffer).equals(Buffer.from(float32.parameters.buffer))).toBe(false);
  });
});
