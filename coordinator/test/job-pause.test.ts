/** Table tests of when a paused job fails (generations/job-pause.ts: pauseTimeout). */

import { JobPhase } from "@trainfleet/proto";
import { describe, expect, it } from "vitest";
import type { PauseState } from "../src/generations/job-pause.js";
import { pauseTimeout } from "../src/generations/job-pause.js";

const workers = { minWorkers: 2, pauseTimeoutSeconds: 30 };
const paused = (reason: string, deadline: number): PauseState => ({
  phase: JobPhase.PAUSED,
  reason,
  message: "what the job waits for",
  deadline,
});

describe("pauseTimeout", () => {
  const cases: Array<[string, PauseState, number, string | undefined]> = [
    ["paused, before the deadline", paused("NotEnoughWorkers", 1_000), 999, undefined],
    ["paused, at the deadline", paused("NotEnoughWorkers", 1_000), 1_000, undefined],
    [
      "paused for workers, past the deadline",
      paused("NotEnoughWorkers", 1_000),
      1_001,
      "fewer than 2 workers (workers.minWorkers) for 30 s (workers.pauseTimeoutSeconds): what the job waits for",
    ],
    [
      "paused for a shard, past the deadline",
      paused("ShardLost", 1_000),
      1_001,
      "a lost parameter-server shard did not come back for 30 s (workers.pauseTimeoutSeconds): what the job waits for",
    ],
    [
      "paused with the generation being begun again, past the deadline",
      paused("Rescaling", 1_000),
      5_000,
      "fewer than 2 workers (workers.minWorkers) for 30 s (workers.pauseTimeoutSeconds): what the job waits for",
    ],
    ["running, past a stale deadline", { ...paused("Training", 1_000), phase: JobPhase.RUNNING }, 5_000, undefined],
    ["failed already", { ...paused("PauseTimeout", 1_000), phase: JobPhase.FAILED }, 5_000, undefined],
  ];
  it.each(cases)("%s", (_, state, now, expected) => {
    expect(pauseTimeout(state, now, workers)).toBe(expected);
  });
});
