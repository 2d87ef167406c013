/**
 * Which workers to evict as stragglers: those that missed max_missed_deadlines step
 * deadlines in a row, as the shards of the current generation count them in their
 * heartbeats (paramserver/src/deadline-watch.ts: in sync mode only the shards can tell who
 * was late). A rank's count is the highest any shard gives it. The counts mean something
 * only while steps run (stragglerEvictions): an idle shard counts every rank late.
 */

import type { JobSpec, ParameterServerStats } from "@trainfleet/proto";
import { JobPhase } from "@trainfleet/proto";
import { isAsync } from "../steps/step-dispatch.js";
import type { Member } from "./members.js";

export function stragglers<T = Member>(
  shardStats: ReadonlyArray<ParameterServerStats | undefined>,
  generation: number,
  ranks: readonly T[],
  maxMissedDeadlines: number,
): Array<{ worker: T; misses: number }> {
  const missed = new Map<T, number>();
  for (const stats of shardStats) {
    if (stats?.generation !== generation) continue;
    stats.missedDeadlines.forEach((misses, rank) => {
      const worker = ranks[rank];
      if (worker !== undefined) missed.set(worker, Math.max(missed.get(worker) ?? 0, misses));
    });
  }
  return [...missed].filter(([, misses]) => misses >= maxMissedDeadlines).map(([worker, misses]) => ({ worker, misses }));
}

/** A started job's steps, as the straggler rule reads them (a RunPlan). */
export interface RunningSteps<T> {
  spec: JobSpec;
  generation: number;
  /** workers[r] has rank r. */
  workers: readonly T[];
  tracker: { readonly completed: number };
  totalSteps: number;
}

/** Where the job stands: its phase, whether a generation is being opened, whether a stop was asked for. */
export interface StragglerWatch {
  phase: JobPhase;
  changing: boolean;
  stopping: boolean;
}

/**
 * The workers to evict now, each with why: none unless steps run (a sync job running, no
 * generation being opened, no stop asked for, steps left); else stragglers().
 */
export function stragglerEvictions<T>(
  watch: StragglerWatch,
  steps: RunningSteps<T> | undefined,
  shardStats: ReadonlyArray<ParameterServerStats | undefined>,
): Array<{ worker: T; why: string }> {
  if (
    steps === undefined ||
    watch.phase !== JobPhase.RUNNING ||
    watch.changing ||
    watch.stopping ||
    steps.tracker.completed >= steps.totalSteps
  )
    return [];
  if (isAsync(steps.spec)) return [];
  const { stepDeadlineMs, maxMissedDeadlines } = steps.spec.workers!;
  return stragglers(shardStats, steps.generation, steps.workers, maxMissedDeadlines).map(({ worker, misses }) => ({
    worker,
    why: `it missed ${misses} step deadlines of ${stepDeadlineMs} ms in a row (workers.stepDeadlineMs, workers.maxMissedDeadlines ${maxMissedDeadlines})`,
  }));
}
