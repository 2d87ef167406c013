/** Table tests of what follows the loss of a member (membership/member-loss.ts: lossOutcome). */
import { describe, expect, it } from "vitest";
import type { LossOutcome } from "../src/membership/member-loss.js";
import { lossOutcome } from "../src/membership/member-loss.js";

type Loss = Parameters<typeof lossOutcome>[0];
const loss = (change: Partial<Loss>): Loss => ({ regroup: true, colocated: false, started: true, worker: true, hadRank: true, ...change });

describe("lossOutcome", () => {
  const cases: Array<[string, Loss, LossOutcome]> = [
    ["a ranked worker: a new generation", loss({}), "regroup"],
    ["a standby worker: only the status changes", loss({ hadRank: false }), "changed"],
    ["a shard: a pause until it is back", loss({ worker: false, hadRank: false }), "pauseForShards"],
    ["before the start: the waiting message", loss({ started: false, hadRank: false }), "waiting"],
    ["a shard before the start: the waiting message", loss({ started: false, worker: false, hadRank: false }), "waiting"],
    ["colocated, started: the job fails", loss({ colocated: true }), "fail"],
    ["colocated, a shard, started: the job fails", loss({ colocated: true, worker: false }), "fail"],
    ["colocated, before the start: the waiting message", loss({ colocated: true, started: false }), "waiting"],
    ["the job is about to fail anyway: nothing more", loss({ regroup: false }), "none"],
    ["the job is about to fail anyway, colocated: nothing more", loss({ regroup: false, colocated: true }), "none"],
  ];
  it.each(cases)("%s", (_, given, expected) => {
    expect(lossOutcome(given)).toBe(expected);
  });
});
