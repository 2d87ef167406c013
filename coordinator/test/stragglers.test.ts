/** Table tests of which workers are evicted as stragglers, and when (membership/stragglers.ts). */
import { create } from "@bufbuild/protobuf";
import type { ParameterServerStats } from "@trainfleet/proto";
import { JobPhase, JobSpecSchema, ParameterServerStatsSchema, TrainingMode } from "@trainfleet/proto";
import { resolveJobSpec } from "@trainfleet/spec";
import { describe, expect, it } from "vitest";
import type { RunningSteps, StragglerWatch } from "../src/membership/stragglers.js";
import { stragglerEvictions, stragglers } from "../src/membership/stragglers.js";

const spec = (mode = TrainingMode.SYNC) =>
  resolveJobSpec(
    create(JobSpecSchema, { jobId: "slow", workers: { replicas: 3, stepDeadlineMs: 500, maxMissedDeadlines: 3 }, training: { mode } }),
  );
const stats = (generation: number, missedDeadlines: number[]): ParameterServerStats =>
  create(ParameterServerStatsSchema, { generation, missedDeadlines });
const steps = (change: Partial<RunningSteps<string>> = {}): RunningSteps<string> => ({
  spec: spec(),
  generation: 2,
  workers: ["a", "b", "c"],
  tracker: { completed: 5 },
  totalSteps: 10,
  ...change,
});
const running: StragglerWatch = { phase: JobPhase.RUNNING, changing: false, stopping: false };

describe("stragglers", () => {
  const cases: Array<[string, Array<ParameterServerStats | undefined>, Array<{ worker: string; misses: number }>]> = [
    ["nobody late", [stats(2, [0, 0, 0]), stats(2, [0, 1, 0])], []],
    ["a rank's count is the highest any shard gives", [stats(2, [0, 3, 0]), stats(2, [0, 4, 0])], [{ worker: "b", misses: 4 }]],
    ["counts of an older generation do not count", [stats(1, [5, 5, 5]), stats(2, [0, 0, 3])], [{ worker: "c", misses: 3 }]],
    ["a shard with no heartbeat yet", [undefined, stats(2, [3, 0, 0])], [{ worker: "a", misses: 3 }]],
    ["a count for a rank the generation does not have", [stats(2, [0, 0, 0, 9])], []],
  ];
  it.each(cases)("%s", (_, shardStats, expected) => {
    expect(stragglers(shardStats, 2, ["a", "b", "c"], 3)).toEqual(expected);
  });
});

describe("stragglerEvictions", () => {
  const late = [stats(2, [0, 3, 0])];
  const evicted = [
    { worker: "b", why: "it missed 3 step deadlines of 500 ms in a row (workers.stepDeadlineMs, workers.maxMissedDeadlines 3)" },
  ];
  const cases: Array<[string, StragglerWatch, RunningSteps<string> | undefined, Array<{ worker: string; why: string }>]> = [
    ["steps running: the late rank", running, steps(), evicted],
    ["not started", running, undefined, []],
    ["paused", { ...running, phase: JobPhase.PAUSED }, steps(), []],
    ["evaluating", { ...running, phase: JobPhase.EVALUATING }, steps(), []],
    ["a generation being opened", { ...running, changing: true }, steps(), []],
    ["a stop asked for", { ...running, stopping: true }, steps(), []],
    ["every step done", running, steps({ tracker: { completed: 10 } }), []],
    ["async mode", running, steps({ spec: spec(TrainingMode.ASYNC) }), []],
  ];
  it.each(cases)("%s", (_, watch, given, expected) => {
    expect(stragglerEvictions(watch, given, late)).toEqual(expected);
  });
});
