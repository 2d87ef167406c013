/**
 * A member's registration, taken in: refused once the job has ended, and for a worker
 * joining a started job with colocated placement (its membership is fixed). A shard that
 * registers for an index whose member still holds its lease replaces that member: its
 * session is dead (a shard registers again only when it lost its coordinator) and what it
 * held cannot be trusted, so it is lost (member-loss.ts) and the job goes back to its
 * checkpoint. The coordinator then fits the new member in. Its strings and the job's number
 * of member records are bounded (request-limits.ts).
 */

import type { RegisterRequest } from "@trainfleet/proto";
import { Code, isFinished, JobEventKind, JobPhase, MemberRole, Placement, TrainfleetError, WorkerState } from "@trainfleet/proto";
import { memberFields } from "../job/job-lifecycle.js";
import type { LossContext } from "./member-loss.js";
import { loseMember } from "./member-loss.js";
import type { Member } from "./members.js";
import { checkRequestStrings, maxMemberRecords } from "./request-limits.js";

/** The registered member; FAILED_PRECONDITION when it may not join, INVALID_ARGUMENT or ALREADY_EXISTS when the request does not hold (Members.add). */
/** `identity`: the name in the member's certificate ("" in plaintext). */
export function admit(request: RegisterRequest, context: LossContext, identity = ""): Member {
  const { members, lifecycle, spec, cycle } = context;
  // Before anything is stored, logged or can displace a member.
  checkRequestStrings(request);
  refuseIfEnded(lifecycle.phase);
  const started = cycle !== undefined;
  if (started && request.role === MemberRole.WORKER && spec?.parameterServers?.placement === Placement.COLOCATED) {
    throw new TrainfleetError(
      Code.FAILED_PRECONDITION,
      "the job runs with colocated placement, whose membership is fixed (each worker process holds a shard); use dedicated placement to add workers",
    );
  }
  const previous = started && request.role === MemberRole.PARAMETER_SERVER ? members.shard(request.shardIndex) : undefined;
  if (previous !== undefined && previous.state !== WorkerState.LOST)
    loseMember(previous, "replaced", `a shard registered again for its index ${request.shardIndex}`, context);
  // With colocated placement, that loss ended the job.
  refuseIfEnded(lifecycle.phase);
  const member = members.add(request, spec?.parameterServers?.shards, identity, maxMemberRecords(spec));
  context.logger.info(
    { memberId: member.id, memberRole: MemberRole[member.role], host: member.host, address: member.address || undefined },
    "member registered",
  );
  lifecycle.publish({ kind: JobEventKind.MEMBER_JOINED, ...memberFields(member) });
  return member;
}

function refuseIfEnded(phase: JobPhase): void {
  if (isFinished(phase))
    throw new TrainfleetError(Code.FAILED_PRECONDITION, `the job has ended (${JobPhase[phase]}); there is nothing to join`);
}
