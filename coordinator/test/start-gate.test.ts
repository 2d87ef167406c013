/** Table tests of when a submitted job starts (job/start-gate.ts). */
import { create } from "@bufbuild/protobuf";
import { JobSpecSchema, WorkerState } from "@trainfleet/proto";
import { resolveJobSpec } from "@trainfleet/spec";
import { describe, expect, it } from "vitest";
import type { Candidate, StartingMembers } from "../src/job/start-gate.js";
import { startingMembers, waitingMessage, workersToStart } from "../src/job/start-gate.js";

const spec = resolveJobSpec(
  create(JobSpecSchema, { jobId: "gate", workers: { replicas: 2, minWorkers: 1 }, parameterServers: { shards: 2 } }),
);

interface Named extends Candidate {
  name: string;
}
const shard = (shardIndex: number, state = WorkerState.REGISTERED): Named => ({ name: `ps-${shardIndex}`, shardIndex, state });
const worker = (name: string): Named => ({ name, shardIndex: -1, state: WorkerState.REGISTERED });
const names = (start: StartingMembers<Named> | undefined) =>
  start === undefined ? undefined : { shards: start.shards.map((m) => m.name), ranked: start.ranked.map((m) => m.name) };

describe("workersToStart", () => {
  const workers = { replicas: 3, minWorkers: 1 };
  const cases: Array<[string, boolean, number | undefined, number, number]> = [
    ["a fresh coordinator: replicas", false, 0, 10_000, 3],
    ["a restarted one, no worker yet: replicas", true, undefined, 10_000, 3],
    ["a restarted one, within a lease of the first worker: replicas", true, 9_001, 10_000, 3],
    ["a restarted one, a lease after the first worker: min_workers", true, 9_000, 10_000, 1],
  ];
  it.each(cases)("%s", (_, restarted, firstWorkerAt, now, expected) => {
    expect(workersToStart(workers, restarted, firstWorkerAt, now, 1_000)).toBe(expected);
  });
});

describe("startingMembers", () => {
  const cases: Array<[string, Named[], Named[], number, ReturnType<typeof names>]> = [
    [
      "every shard and enough workers: ranks up to max_workers",
      [shard(0), shard(1)],
      [worker("w0"), worker("w1"), worker("w2")],
      2,
      { shards: ["ps-0", "ps-1"], ranked: ["w0", "w1"] },
    ],
    ["a shard missing", [shard(1)], [worker("w0"), worker("w1")], 2, undefined],
    ["a shard lost", [shard(0, WorkerState.LOST), shard(1)], [worker("w0"), worker("w1")], 2, undefined],
    ["a shard of an index the job does not have does not count", [shard(0), shard(2)], [worker("w0"), worker("w1")], 2, undefined],
    ["too few workers", [shard(0), shard(1)], [worker("w0")], 2, undefined],
    ["fewer needed (a restart)", [shard(0), shard(1)], [worker("w0")], 1, { shards: ["ps-0", "ps-1"], ranked: ["w0"] }],
  ];
  it.each(cases)("%s", (_, shards, workers, needed, expected) => {
    expect(names(startingMembers(spec, shards, workers, needed))).toEqual(expected);
  });
});

describe("waitingMessage", () => {
  it("says what the job waits for: its spec, or its members (lost shards not counted)", () => {
    const members = (shards: Named[], workers: Named[]) => ({ shards: () => shards, liveWorkers: () => workers });
    expect(waitingMessage(undefined, members([], []))).toBe("waiting for a JobSpec (SubmitJob)");
    expect(waitingMessage(spec, members([shard(0), shard(1, WorkerState.LOST)], [worker("w0")]))).toBe(
      "waiting for members: 1/2 parameter-server shards, 1/2 workers registered",
    );
  });
});
