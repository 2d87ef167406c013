/**
 * What the loss of a member does to the job, for every way a member goes: a missed lease,
 * a closed assignment stream, a straggler evicted, a worker's own report of a failure, a
 * shard replaced by a new process. The member is told to stop (it may register again);
 * then a worker with a rank makes a new generation, a shard's loss pauses the job until
 * it is back (its slice lived in its memory), and with colocated placement any loss fails
 * the job. The rule is lossOutcome (pure); loseMember carries it out.
 */
import { JobEventKind, MemberRole, Placement, WorkerState } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import type { GenerationCycle } from "../generations/generation-cycle.js";
import type { JobEnd } from "../job/job-end.js";
import type { JobLifecycle } from "../job/job-lifecycle.js";
import { memberFields } from "../job/job-lifecycle.js";
import { waitingMessage } from "../job/start-gate.js";
import type { CoordinatorMetrics, EvictionCause } from "../status/coordinator-metrics.js";
import type { Member, Members } from "./members.js";

/** The job as a loss meets it. */
export interface LossContext {
  members: Members;
  lifecycle: JobLifecycle;
  metrics: Pick<CoordinatorMetrics, "memberEvicted">;
  logger: Logger;
  end: Pick<JobEnd, "fail">;
  /** The job's spec, once submitted. */
  spec: ResolvedJobSpec | undefined;
  /** The started job's generations; none before it starts. */
  cycle: Pick<GenerationCycle, "hasRank" | "pauseForShards" | "regroup"> | undefined;
}

/**
 * What follows a loss: nothing more (`regroup` false: the job is about to fail anyway);
 * fail (colocated placement: the process held a shard); the waiting message (not started);
 * a pause for the shard; a new generation (a worker that had a rank); or only a status change.
 */
export type LossOutcome = "none" | "fail" | "waiting" | "pauseForShards" | "regroup" | "changed";

export function lossOutcome(loss: {
  regroup: boolean;
  colocated: boolean;
  started: boolean;
  worker: boolean;
  hadRank: boolean;
}): LossOutcome {
  if (!loss.regroup) return "none";
  if (loss.colocated && loss.started) return "fail";
  if (!loss.started) return "waiting";
  if (!loss.worker) return "pauseForShards";
  return loss.hadRank ? "regroup" : "changed";
}

/**
 * The reason a lost member's status keeps (WorkerStatus.last_error_reason): a watcher that
 * reads the status after the job's message has moved on still sees why each member went.
 */
const lossReasons: Record<EvictionCause, string> = {
  lease_expired: "LeaseExpired",
  stream_closed: "StreamClosed",
  straggler: "Straggler",
  replaced: "Replaced",
  failed: "Failed",
};

/** `member` is gone, because `why`; `regroup` false: it is marked lost and nothing more. A member already lost is left alone. */
export function loseMember(member: Member, cause: EvictionCause, why: string, context: LossContext, regroup = true): void {
  if (member.state === WorkerState.LOST) return;
  const { lifecycle, logger, spec, cycle } = context;
  const hadRank = cycle?.hasRank(member) === true;
  member.state = WorkerState.LOST;
  const worker = member.role === MemberRole.WORKER;
  context.metrics.memberEvicted(spec?.jobId ?? "", worker ? "worker" : "parameter_server", cause);
  const rank = hadRank ? ` (rank ${member.rank})` : "";
  const role = worker ? `worker ${member.id}${rank}` : `parameter-server shard ${member.shardIndex}`;
  const lost = `${role} was ${cause === "straggler" ? "evicted" : "lost"}: ${why}`;
  // A worker's own failure report (set before its loss) says more than the loss does.
  member.lastError ??= { reason: lossReasons[cause], message: lost };
  lifecycle.publish({ kind: JobEventKind.MEMBER_LOST, ...memberFields(member), message: lost });
  member.outbox.push({ kind: { case: "stop", value: { reason: "Evicted", rejoin: true } } });
  member.outbox.close();
  const colocated = spec?.parameterServers?.placement === Placement.COLOCATED;
  const outcome = lossOutcome({ regroup, colocated, started: cycle !== undefined, worker, hadRank });
  if (outcome === "fail") {
    return context.end.fail(
      "MemberLost",
      `${lost}. With colocated placement its process held a shard, so the job stops here rather than hang; resume it from its last checkpoint (trainfleet run --resume)`,
    );
  }
  logger.warn({ memberId: member.id, cause }, lost);
  if (outcome === "waiting") lifecycle.setReason(lifecycle.reason, waitingMessage(spec, context.members));
  else if (outcome === "pauseForShards") cycle?.pauseForShards(lost);
  else if (outcome === "regroup") cycle?.regroup(lost);
  else if (outcome === "changed") lifecycle.changed();
}
