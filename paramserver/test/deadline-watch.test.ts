import { describe, expect, it } from "vitest";
import { DeadlineWatch } from "../src/deadline-watch.js";

/** A watch on a clock the test moves. */
function watch(deadlineMs: number, worldSize: number) {
  const clock = { now: 0 };
  const deadlines = new DeadlineWatch(deadlineMs, () => clock.now);
  deadlines.generationOpened(worldSize);
  return { deadlines, clock };
}

describe("DeadlineWatch", () => {
  it("counts a rank the step waits for once per period so far, and settles each rank's lateness when the step is applied", () => {
    const { deadlines, clock } = watch(1_000, 3);
    clock.now = 400;
    deadlines.rankPushed(0);
    clock.now = 999;
    expect(deadlines.missedDeadlines()).toEqual([0, 0, 0]);
    clock.now = 1_500;
    deadlines.rankPushed(1);
    expect(deadlines.missedDeadlines()).toEqual([0, 0, 1]);
    clock.now = 3_200;
    // Stuck: rank 2 is three periods late and counting.
    expect(deadlines.missedDeadlines()).toEqual([0, 0, 3]);
    deadlines.rankPushed(2);
    deadlines.stepApplied();
    expect(deadlines.missedDeadlines()).toEqual([0, 1, 3]);
  });

  it("clears a rank that pushed a step in time, and every count when a generation opens", () => {
    const { deadlines, clock } = watch(100, 2);
    clock.now = 250;
    deadlines.rankPushed(0);
    deadlines.rankPushed(1);
    deadlines.stepApplied();
    expect(deadlines.missedDeadlines()).toEqual([2, 2]);
    clock.now = 300;
    deadlines.rankPushed(0);
    clock.now = 420;
    deadlines.rankPushed(1);
    deadlines.stepApplied();
    expect(deadlines.missedDeadlines()).toEqual([0, 3]);
    clock.now = 430;
    deadlines.generationOpened(3);
    expect(deadlines.missedDeadlines()).toEqual([0, 0, 0]);
  });
});
