import { describe, expect, it } from "vitest";
import { StepTracker } from "../src/steps/step-tracker.js";

describe("StepTracker", () => {
  it("completes a step when every rank has reported, in step order, whatever the arrival order", () => {
    let now = 0;
    const tracker = new StepTracker(2, () => now);
    expect(tracker.report({ rank: 0, step: 1, loss: 1, samples: 10 })).toBe(0);
    expect(tracker.report({ rank: 1, step: 1, loss: 3, samples: 10 })).toBe(0);
    expect(tracker.report({ rank: 1, step: 0, loss: 2, samples: 10 })).toBe(0);
    expect(tracker.report({ rank: 1, step: 0, loss: 2, samples: 10 })).toBe(0);
    now = 1000;
    expect(tracker.report({ rank: 0, step: 0, loss: 4, samples: 30 })).toBe(2);
    expect(tracker.completed).toBe(2);
    // Step 1's loss, weighted by samples: (1*10 + 3*10) / 20.
    expect(tracker.lastLoss).toBe(2);
    expect(tracker.report({ rank: 0, step: 0, loss: 9, samples: 10 })).toBe(0);
  });

  it("reports throughput over the completed steps", () => {
    let now = 0;
    const tracker = new StepTracker(1, () => now);
    for (let step = 0; step < 5; step++) {
      now = step * 100;
      tracker.report({ rank: 0, step, loss: 0, samples: 64 });
    }
    // 4 steps of 64 samples in 400 ms.
    expect(tracker.samplesPerSecond()).toBe(640);
  });
});
