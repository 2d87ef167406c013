/**
 * A lost shard took its slice with it, so the job paused (GenerationCycle.pauseForShards).
 * When a shard process registers again in its place, its addresses go into the plan, and
 * once no shard is missing the whole job goes back to its newest checkpoint (or to the
 * seeded start when there is none: checkpoint-restore.ts): the steps after it are run
 * again, and every shard restores its slice with the next generation.
 */
import { isFinished, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import type { GoBack } from "../checkpoints/checkpoint-restore.js";
import { goBackPoint } from "../checkpoints/checkpoint-restore.js";
import type { JobEnd } from "../job/job-end.js";
import type { JobLifecycle } from "../job/job-lifecycle.js";
import type { Member } from "../membership/members.js";
import type { LedgerAudit } from "../steps/ledger-audit.js";
import type { GenerationCycle } from "./generation-cycle.js";

export interface RollbackOptions {
  lifecycle: JobLifecycle;
  end: Pick<JobEnd, "fail" | "evaluation">;
  logger: Logger;
  /** Told that the steps after the checkpoint are run again (--ledger-audit). */
  ledgerAudit: LedgerAudit | undefined;
}

/** `shard` registered in a lost one's place. */
export async function shardReturned(shard: Member, cycle: GenerationCycle, options: RollbackOptions): Promise<void> {
  const { plan } = cycle;
  Object.assign(plan.shardRanges[shard.shardIndex]!, { address: shard.address, dataAddress: shard.dataAddress });
  const why = `parameter-server shard ${shard.shardIndex} registered again`;
  // Once evaluated, the job only finishes: its result stands, whatever the shards do.
  if (options.end.evaluation !== undefined) return;
  if (cycle.missingShards().length > 0) return cycle.pauseForShards(why);
  let back: GoBack;
  try {
    back = await goBackPoint(plan, options.logger);
  } catch (error) {
    return options.end.fail(
      "ResumeFailed",
      `${why}, but the job cannot go back to its checkpoint ${plan.checkpoints?.last?.path}: ${TrainfleetError.from(error).message}`,
    );
  }
  // Things may have moved on while the checkpoint was read.
  if (isFinished(options.lifecycle.phase) || options.end.evaluation !== undefined || cycle.missingShards().length > 0) return;
  plan.tracker.rewind(back.version);
  plan.samples.seek(back.version);
  options.ledgerAudit?.rewindTo(back.version);
  plan.restores = back.restores;
  cycle.regroup(`${why}; the job goes back to ${back.description}`);
}
