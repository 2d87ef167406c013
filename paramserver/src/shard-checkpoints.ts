/**
 * A parameter shard's side of checkpoints: the snapshots it hands out and the restores it
 * takes in (ParameterShard.snapshot, requestSnapshot, onSnapshot's listeners, restore).
 * The state and the schedule themselves are in shard-snapshot.ts.
 *
 * Checkpoints: at the versions its SnapshotSchedule names, the shard copies the version's
 * slice and optimizer state the moment the version is reached (the step after next
 * overwrites those buffers) and hands the copy, with the generation it was reached in, to
 * its snapshot listeners, which write it out. Going back a version voids the snapshot of
 * the version left: it is taken again when the shard gets there again.
 *
 * Restores: `restore` replaces a closed shard's state with such a snapshot, or with the
 * seeded initial state (initialShardState): a job resumed from a checkpoint, and a
 * restarted coordinator or shard, whose new generation restores every shard to the same
 * checkpoint. Only while closed, so that no pull sees a version replaced under it (those of
 * the generation before ended ABORTED at the close).
 */

import { Code, TrainfleetError } from "@trainfleet/proto";
import type { ShardCore } from "./shard-core.js";
import { requireConfig, resetBarrier } from "./shard-core.js";
import { notifyChange } from "./shard-pulls.js";
import type { ShardSnapshot, ShardState } from "./shard-snapshot.js";
import { SnapshotSchedule, snapshotMismatches } from "./shard-snapshot.js";

/** See ParameterShard.restore. */
export function restoreShard(s: ShardCore, snapshot: ShardState): void {
  const config = requireConfig(s);
  const problems = snapshotMismatches(snapshot, { jobId: config.jobId, range: config.range, optimizer: s.optimizer!.kind });
  if (s.generation.phase === "open") {
    problems.push(
      `the shard is open for generation ${s.generation.generation}, and pulls may be reading version ${s.version}; restore after a new generation's ShardAssignment, before its open_generation`,
    );
  }
  if (problems.length > 0)
    throw new TrainfleetError(Code.FAILED_PRECONDITION, `cannot restore version ${snapshot.version}: ${problems.join("; ")}`);
  s.params.set(snapshot.parameters);
  s.optimizer!.restoreState(snapshot.state);
  s.version = snapshot.version;
  resetBarrier(s);
  s.generation.restored();
  // Periodic snapshots go on from the restored version; requests made before it are void.
  s.snapshots = new SnapshotSchedule(config.checkpointEverySteps ?? 0, snapshot.version);
  // Values handed out before for this version number were other values.
  s.revision++;
  notifyChange(s);
}

/** A copy of the current version's slice and optimizer state, with the generation it was reached in. */
export function takeSnapshot(s: ShardCore): ShardSnapshot {
  const config = requireConfig(s);
  const optimizer = s.optimizer!;
  return {
    jobId: config.jobId,
    version: s.version,
    generation: s.generation.reachedIn,
    range: { ...config.range },
    optimizer: optimizer.kind,
    parameters: s.params.slice(),
    state: optimizer.state().map((values) => values.slice()),
  };
}

/** See ParameterShard.requestSnapshot. */
export function requestShardSnapshot(s: ShardCore, version: number): void {
  requireConfig(s);
  if (s.snapshots.request(version, s.version)) {
    s.snapshots.taken(version);
    emitSnapshot(s);
  }
}

/** Hands a snapshot of the version just reached to every listener, synchronously. */
export function emitSnapshot(s: ShardCore): void {
  const snapshot = takeSnapshot(s);
  for (const listener of s.snapshotListeners) listener(snapshot);
}
