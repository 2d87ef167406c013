/**
 * What a change of membership does to a started job, decided as pure functions so that
 * the rules have table tests: whether its ranks stay as they are (a worker that joined
 * waits as a standby), a new generation begins, or the job pauses below
 * workers.minWorkers; and which shard indices have no live member (nothing runs then).
 * The generation cycle (generation-cycle.ts) carries the decision out.
 */
import { JobPhase, WorkerState } from "@trainfleet/proto";
import { chooseRanks } from "../membership/roster.js";

/** keep: the ranks stay, the others wait as standbys; begin: a new generation with `ranked`; pause: too few workers (`ranked` are all there are). */
export type RegroupAction = "keep" | "begin" | "pause";

export interface Regroup<T> {
  action: RegroupAction;
  /** ranked[r] gets rank r in the new generation (or would, for a pause). */
  ranked: T[];
  standby: T[];
}

export interface RegroupState<T> {
  /** The newest generation opened (0 before the first). */
  generation: number;
  /** Its ranks. */
  ranks: readonly T[];
  /** The ranks of the generation being opened, when one is. */
  opening: readonly T[] | undefined;
  phase: JobPhase;
  /** Every live worker, in registration order. */
  live: readonly T[];
  minWorkers: number;
  maxWorkers: number;
}

/**
 * Workers joined or left. The ranks of an open generation all alive stay as they are when
 * the job has its max_workers, or is evaluating (a join leaves the evaluation alone);
 * otherwise a new generation with the live workers (up to max_workers; the others are
 * standbys), or a pause when fewer than min_workers are left.
 */
export function regroup<T>(state: RegroupState<T>): Regroup<T> {
  const previous = state.opening ?? state.ranks;
  const intact =
    state.generation > 0 &&
    state.opening === undefined &&
    state.phase !== JobPhase.PAUSED &&
    previous.every((worker) => state.live.includes(worker));
  const roster = chooseRanks(previous, state.live, intact && state.phase === JobPhase.EVALUATING ? previous.length : state.maxWorkers);
  if (intact && roster.ranked.length === previous.length) return { action: "keep", ...roster };
  if (roster.ranked.length < state.minWorkers) return { action: "pause", ...roster };
  return { action: "begin", ...roster };
}

/** Shard indices 0..shardCount-1 with no live member: their slices are gone until a shard registers again. */
export function missingShards(shards: ReadonlyArray<{ shardIndex: number; state: WorkerState }>, shardCount: number): number[] {
  const live = new Set(shards.filter((shard) => shard.state !== WorkerState.LOST).map((shard) => shard.shardIndex));
  return Array.from({ length: shardCount }, (_, index) => index).filter((index) => !live.has(index));
}
