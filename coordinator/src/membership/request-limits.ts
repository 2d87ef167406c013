/**
 * Bounds on what members send the coordinator, checked before anything is stored or echoed
 * back: a string field longer than its limit is refused with INVALID_ARGUMENT naming it (a
 * 1 MiB `host` would otherwise sit in the status that every watcher reads), and the member
 * records a job keeps are bounded (members.ts prunes lost ones first), so that fake
 * registrations cannot grow the status without end. These are protocol maxima, not settings:
 * no real host, id or address comes near them.
 */
import type { JobSpec } from "@trainfleet/proto";
import { Code, invalidField, TrainfleetError } from "@trainfleet/proto";

/** The longest value each string field may have, by its name in the generated message (camelCase). */
export const maxFieldChars: Readonly<Record<string, number>> = {
  // A DNS name (RFC 1035); a pod name is shorter still.
  host: 253,
  // A host, brackets for IPv6, a colon and a port.
  address: 261,
  dataAddress: 261,
  backend: 64,
  memberId: 64,
  workerId: 64,
  sha256: 64,
  path: 4096,
  error: 4096,
};

/** Any other string field. */
const maxOtherFieldChars = 4096;
/** ReportFailure's message is cut to 2048 characters instead (a worker exiting does not resend), and its reason is checked, 64 at most, with its form (worker-failures.ts). */
const boundElsewhere = new Set(["message", "reason"]);

const snakeCase = (name: string) => name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);

/** Refuses a request any of whose top-level string fields is longer than its limit. */
export function checkRequestStrings(request: object): void {
  for (const [name, value] of Object.entries(request)) {
    if (typeof value !== "string" || boundElsewhere.has(name)) continue;
    const limit = maxFieldChars[name] ?? maxOtherFieldChars;
    if (value.length > limit) throw invalidField(snakeCase(name), `${value.length} characters; at most ${limit} are taken`);
  }
}

/** Refuses a member id longer than any the coordinator issues (before it is looked up, or quoted in an error). */
export function checkMemberId(memberId: string): void {
  checkRequestStrings({ memberId });
}

/**
 * How many member records (live or lost) a job keeps: every worker it may have and every
 * shard, four times over for replacements, and some to spare. Lost members are pruned,
 * oldest first, before this refuses a registration, so a long elastic job never reaches it.
 */
export function maxMemberRecords(spec: JobSpec | undefined): number {
  const workers = spec?.workers?.maxWorkers ?? 1024;
  const shards = spec?.parameterServers?.shards ?? 0;
  return 4 * (workers + shards) + 16;
}

/** The refusal when `limit` records are live: nothing lost is left to prune. */
export function tooManyMembers(limit: number): TrainfleetError {
  return new TrainfleetError(
    Code.RESOURCE_EXHAUSTED,
    `this job holds ${limit} live member records already (4 x (workers.maxWorkers + parameterServers.shards) + 16); a stale member is pruned once its lease runs out, or raise workers.maxWorkers`,
  );
}
