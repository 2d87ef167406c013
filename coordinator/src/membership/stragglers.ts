/**
 * Which workers to evict as stragglers: those that missed max_missed_deadlines step
 * deadlines in a row, as the shards of the current generation count them in their
 * heartbeats (paramserver/src/deadline-watch.ts: in sync mode only the shards can tell who
 * was late). A rank's count is the highest any shard gives it.
 */
import type { ParameterServerStats } from "@trainfleet/proto";
import type { Member } from "./members.js";

export function stragglers(shardStats: ReadonlyArray<ParameterServerStats | undefined>, generation: number, ranks: readonly Member[], maxMissedDeadlines: number): Array<{ worker: Member; misses: number }> {
  const missed = new Map<Member, number>();
  for (const stats of shardStats) {
    if (stats?.generation !== generation) continue;
    stats.missedDeadlines.forEach((misses, rank) => {
      const worker = ranks[rank];
      if (worker !== undefined) missed.set(worker, Math.max(missed.get(worker) ?? 0, misses));
    });
  }
  return [...missed].filter(([, misses]) => misses >= maxMissedDeadlines).map(([worker, misses]) => ({ worker, misses }));
}
