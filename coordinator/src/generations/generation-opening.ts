/**
 * A generation being opened. The coordinator has sent every shard the generation's
 * assignment, which closes it (no push, no pull) and drops the step in progress; each
 * shard answers with the version it holds. Shards can differ by one version: the step
 * in flight may have completed on some shards and not on others (a rank died between its
 * pushes). The generation goes on from the lowest, to which the others go back.
 */
import type { AssignmentInit, Member } from "../membership/members.js";

export class GenerationOpening {
  readonly #versions = new Map<number, number>();
  /** Each shard's assignment, to send again to a shard whose answer does not come (a shard does not retry its report). */
  readonly #assignments = new Map<Member, AssignmentInit>();
  #sentAt = 0;

  constructor(
    readonly generation: number,
    /** ranked[r] gets rank r. */
    readonly ranked: readonly Member[],
    /** Why the generation changed, for the status and the events. */
    readonly why: string,
    private readonly shardCount: number,
  ) {}

  /** Sends shard its assignment for this generation. */
  send(shard: Member, assignment: AssignmentInit, now: number): void {
    this.#assignments.set(shard, assignment);
    this.#sentAt = now;
    shard.outbox.push(assignment);
  }

  /** Sends the assignment again to the shards that have not answered within `waitMs` (a closed shard answers a repeat). */
  resendIfSilent(now: number, waitMs: number): void {
    if (now - this.#sentAt < waitMs) return;
    this.#sentAt = now;
    for (const [shard, assignment] of this.#assignments) if (!this.#versions.has(shard.shardIndex)) shard.outbox.push(assignment);
  }

  /** Shard `index` holds `version`; once every shard has said, the version the generation goes on from. */
  report(index: number, version: number): number | undefined {
    this.#versions.set(index, version);
    if (this.#versions.size < this.shardCount) return undefined;
    return Math.min(...this.#versions.values());
  }
}
