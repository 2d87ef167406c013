/**
 * Table tests of what a membership change does to a started job (generations/regroup.ts):
 * keep the ranks (a joined worker waits as a standby), begin a new generation, or pause
 * below min_workers; and which shards are missing.
 */

import { JobPhase, WorkerState } from "@trainfleet/proto";
import { describe, expect, it } from "vitest";
import type { Regroup, RegroupState } from "../src/generations/regroup.js";
import { missingShards, regroup } from "../src/generations/regroup.js";

/** Workers are named by letter; `live` in registration order. */
const state = (change: Partial<RegroupState<string>>): RegroupState<string> => ({
  generation: 1,
  ranks: ["a", "b", "c"],
  opening: undefined,
  phase: JobPhase.RUNNING,
  live: ["a", "b", "c"],
  minWorkers: 1,
  maxWorkers: 3,
  ...change,
});

describe("regroup", () => {
  const cases: Array<[string, RegroupState<string>, Regroup<string>]> = [
    [
      "the first generation: every live worker, up to max_workers",
      state({ generation: 0, ranks: [], live: ["a", "b", "c", "d"] }),
      { action: "begin", ranked: ["a", "b", "c"], standby: ["d"] },
    ],
    [
      "a join at max_workers: the ranks stay, the new worker waits",
      state({ live: ["a", "b", "c", "d"] }),
      { action: "keep", ranked: ["a", "b", "c"], standby: ["d"] },
    ],
    [
      "a join below max_workers: a new generation with it last",
      state({ maxWorkers: 4, live: ["d", "a", "b", "c"] }),
      { action: "begin", ranked: ["a", "b", "c", "d"], standby: [] },
    ],
    [
      "a join while evaluating, below max_workers: the evaluation keeps its ranks",
      state({ phase: JobPhase.EVALUATING, maxWorkers: 4, live: ["a", "b", "c", "d"] }),
      { action: "keep", ranked: ["a", "b", "c"], standby: ["d"] },
    ],
    ["a loss: the others keep their order", state({ live: ["a", "c"] }), { action: "begin", ranked: ["a", "c"], standby: [] }],
    ["a loss below min_workers: a pause", state({ minWorkers: 3, live: ["a", "c"] }), { action: "pause", ranked: ["a", "c"], standby: [] }],
    [
      "a loss with a standby: the standby takes a rank",
      state({ live: ["a", "c", "d"] }),
      { action: "begin", ranked: ["a", "c", "d"], standby: [] },
    ],
    [
      "paused, a worker joins: a new generation, even with the ranks alive",
      state({ phase: JobPhase.PAUSED, minWorkers: 3, ranks: ["a", "c"], live: ["a", "c", "d"] }),
      { action: "begin", ranked: ["a", "c", "d"], standby: [] },
    ],
    [
      "paused, still too few: the pause goes on",
      state({ phase: JobPhase.PAUSED, minWorkers: 3, ranks: ["a", "c"], live: ["a", "c"] }),
      { action: "pause", ranked: ["a", "c"], standby: [] },
    ],
    [
      "a generation being opened: begun again from its ranks, at max_workers",
      state({ opening: ["a", "b"], maxWorkers: 2, live: ["a", "b", "c"] }),
      { action: "begin", ranked: ["a", "b"], standby: ["c"] },
    ],
    [
      "a generation being opened loses a rank: begun again without it",
      state({ opening: ["a", "b"], live: ["b", "c"] }),
      { action: "begin", ranked: ["b", "c"], standby: [] },
    ],
  ];
  it.each(cases)("%s", (_, given, expected) => {
    expect(regroup(given)).toEqual(expected);
  });
});

describe("missingShards", () => {
  const shard = (shardIndex: number, state: WorkerState) => ({ shardIndex, state });
  const cases: Array<[string, Array<{ shardIndex: number; state: WorkerState }>, number, number[]]> = [
    ["every shard live", [shard(0, WorkerState.REGISTERED), shard(1, WorkerState.TRAINING)], 2, []],
    ["a lost shard", [shard(0, WorkerState.REGISTERED), shard(1, WorkerState.LOST)], 2, [1]],
    ["a shard that never registered", [shard(1, WorkerState.REGISTERED)], 3, [0, 2]],
    ["a lost shard's successor", [shard(0, WorkerState.LOST), shard(0, WorkerState.REGISTERED)], 1, []],
  ];
  it.each(cases)("%s", (_, shards, count, expected) => {
    expect(missingShards(shards, count)).toEqual(expected);
  });
});
