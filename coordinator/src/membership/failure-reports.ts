/**
 * A worker's report that it is exiting on an error no new assignment mends
 * (CoordinatorService.ReportFailure), taken in. Its reason goes into its status, an event
 * and a metric; it is lost at once (member-loss.ts: no waiting for its lease); and once
 * workers.replicas such reports have come with no step completed in between, the job
 * fails with reason WorkerFailed (the rule and its count: worker-failures.ts). A worker
 * that never registered reports by host: it is counted, and named in the event and the
 * job's message.
 */

import type { ReportFailureRequest } from "@trainfleet/proto";
import { Code, invalidField, isFinished, JobEventKind, JobPhase, MemberRole, TrainfleetError } from "@trainfleet/proto";
import { memberFields } from "../job/job-lifecycle.js";
import type { CoordinatorMetrics } from "../status/coordinator-metrics.js";
import type { LossContext } from "./member-loss.js";
import { loseMember } from "./member-loss.js";
import type { Member } from "./members.js";
import type { WorkerFailures } from "./worker-failures.js";
import { failedWorker, validateFailureReport } from "./worker-failures.js";

export interface FailureReportContext extends LossContext {
  metrics: Pick<CoordinatorMetrics, "memberEvicted" | "workerFailed">;
  /** The fatal reports since the last completed step. */
  failures: WorkerFailures;
}

/** Throws INVALID_ARGUMENT or NOT_FOUND (naming the field) for a report that does not hold, FAILED_PRECONDITION once the job has ended. */
export function takeFailureReport(request: ReportFailureRequest, context: FailureReportContext): void {
  const { members, lifecycle, logger, failures, spec } = context;
  let failure = validateFailureReport(request);
  let member: Member | undefined;
  if (failure.workerId !== "") {
    member = members.find(failure.workerId);
    if (member === undefined)
      throw new TrainfleetError(
        Code.NOT_FOUND,
        `worker_id: "${failure.workerId}" is not a worker of this job; a worker that is not registered reports by host, with worker_id empty`,
        { field: "worker_id" },
      );
    if (member.role !== MemberRole.WORKER) throw invalidField("worker_id", `${member.id} is a parameter-server shard, not a worker`);
    if (failure.host === "") failure = { ...failure, host: member.host };
  }
  if (isFinished(lifecycle.phase))
    throw new TrainfleetError(Code.FAILED_PRECONDITION, `the job has ended (${JobPhase[lifecycle.phase]}); its status is final`);
  failures.record(failure);
  context.metrics.workerFailed(spec?.jobId ?? "", failure.reason);
  const generation = failure.generation === 0 ? "" : ` in generation ${failure.generation}`;
  const what = `${failure.reason}${failure.message === "" ? "" : `: ${failure.message}`}`;
  logger.warn(
    { memberId: failure.workerId || undefined, host: failure.host, reason: failure.reason, failures: failures.count },
    `${failedWorker(failure)} failed${generation}: ${what}`,
  );
  const who = member === undefined ? { memberRole: MemberRole.WORKER, rank: -1 } : memberFields(member);
  lifecycle.publish({ kind: JobEventKind.MEMBER_FAILED, ...who, message: `${failedWorker(failure)} failed${generation}: ${what}` });
  if (member !== undefined) member.lastError = { reason: failure.reason, message: failure.message };
  const verdict = spec === undefined ? undefined : failures.verdict(spec.workers!.replicas);
  if (verdict !== undefined) {
    // The job ends here: the worker is lost, but no new generation is begun for it.
    if (member !== undefined) loseMember(member, "failed", `it failed: ${what}`, context, false);
    return context.end.fail("WorkerFailed", verdict);
  }
  if (member !== undefined) loseMember(member, "failed", `it failed: ${what}`, context);
  else lifecycle.changed();
}
