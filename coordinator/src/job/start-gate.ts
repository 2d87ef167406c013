/**
 * When a submitted job starts, decided as pure functions: once the members that
 * @trainfleet/spec's membersToStart names are in (every parameter-server shard and
 * workers.replicas workers; a restarted coordinator, whose workers may not all come back,
 * starts with workers.minWorkers once a lease has passed since the first); and the message
 * the status shows while the job waits. The Kubernetes operator sizes its gangs by the same
 * function.
 */

import type { JobSpec } from "@trainfleet/proto";
import { WorkerState } from "@trainfleet/proto";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import { membersToStart, workersToStartWith } from "@trainfleet/spec";
import { chooseRanks } from "../membership/roster.js";

type WorkersSpec = NonNullable<JobSpec["workers"]>;

/** What the start gate reads of a member. */
export interface Candidate {
  readonly shardIndex: number;
  readonly state: WorkerState;
}

/** The members a job starts with: shard i at index i, and the first generation's workers by rank. */
export interface StartingMembers<T> {
  shards: T[];
  ranked: T[];
}

/** Workers needed to start: replicas; a restarted coordinator, min_workers once `leaseMs` has passed since the first worker registered. */
export function workersToStart(
  workers: Pick<WorkersSpec, "replicas" | "minWorkers">,
  restarted: boolean,
  firstWorkerAt: number | undefined,
  now: number,
  leaseMs: number,
): number {
  const waited = firstWorkerAt !== undefined && now - firstWorkerAt >= leaseMs;
  return workersToStartWith(workers, restarted && waited);
}

/**
 * The members to start with, once enough are in (`needed` workers: workersToStart); none
 * before. `shards`: every registered shard; `liveWorkers`: in registration order.
 */
export function startingMembers<T extends Candidate>(
  spec: ResolvedJobSpec,
  shards: readonly T[],
  liveWorkers: readonly T[],
  needed: number,
): StartingMembers<T> | undefined {
  const shardCount = membersToStart(spec).shards;
  // Shards that registered before the spec arrived may have indices the job does not have.
  const live = shards.filter((shard) => shard.shardIndex < shardCount && shard.state !== WorkerState.LOST);
  if (live.length < shardCount || liveWorkers.length < needed) return undefined;
  return { shards: live, ranked: chooseRanks([], liveWorkers, spec.workers!.maxWorkers).ranked };
}

/** The status message while the job waits for its spec or its members. */
export function waitingMessage(
  spec: ResolvedJobSpec | undefined,
  members: { shards(): readonly Candidate[]; liveWorkers(): readonly Candidate[] },
): string {
  if (spec === undefined) return "waiting for a JobSpec (SubmitJob)";
  const shards = members.shards().filter((shard) => shard.state !== WorkerState.LOST).length;
  const workers = members.liveWorkers().length;
  const needed = membersToStart(spec);
  return `waiting for members: ${shards}/${needed.shards} parameter-server shards, ${workers}/${needed.workers} workers registered`;
}
