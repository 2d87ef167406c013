/**
 * The registry of a job's members (workers and parameter-server shards) and their leases.
 * A member is live while its lease, renewed by heartbeat, has not run out. The records kept
 * are bounded (request-limits.ts): at the bound, lost and stopped members are pruned oldest
 * first, and only a table of live members refuses a registration.
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AssignmentsResponse, AssignmentsResponseSchema, ParameterServerStats, RegisterRequest } from "@trainfleet/proto";
import { Code, invalidField, MemberRole, TrainfleetError, WorkerState } from "@trainfleet/proto";
import { AsyncQueue } from "@trainfleet/runtime";
import { tooManyMembers } from "./request-limits.js";
import type { StepTiming } from "./step-timing.js";

export type AssignmentInit = MessageInitShape<typeof AssignmentsResponseSchema> | AssignmentsResponse;

export interface Member {
  readonly id: string;
  readonly role: MemberRole;
  readonly host: string;
  readonly address: string;
  readonly dataAddress: string;
  readonly shardIndex: number;
  readonly backend: string;
  /** The name its certificate gives it (worker-3), over mutual TLS; "" in plaintext. Shards take a rank's pushes only from it. */
  readonly identity: string;
  readonly outbox: AsyncQueue<AssignmentInit>;
  leaseExpiresAt: number;
  lastHeartbeat: number;
  state: WorkerState;
  /** Rank in the current generation; -1 when it has none. */
  rank: number;
  lastStep: number;
  /** Workers: bytes read from the dataset's storage, as last reported. */
  bytesRead: number;
  /** Workers: smoothed step timings from their progress reports (see step-timing.ts). */
  timing: StepTiming;
  /** Parameter-server shards: the counters of their latest heartbeat. */
  shardStats: ParameterServerStats | undefined;
  /** Why the member went: a worker's own report before exiting (ReportFailure), else why it was lost (member-loss.ts). */
  lastError: { reason: string; message: string } | undefined;
}

export class Members {
  readonly #members = new Map<string, Member>();
  #nextWorker = 0;

  constructor(
    private readonly leaseMs: number,
    private readonly now: () => number,
  ) {}

  /** `maxRecords`: the most member records kept, live or lost (request-limits.ts maxMemberRecords). */
  add(request: RegisterRequest, shardCount: number | undefined, identity = "", maxRecords = Number.POSITIVE_INFINITY): Member {
    let id: string;
    if (request.role === MemberRole.WORKER) {
      id = `worker-${this.#nextWorker++}`;
    } else if (request.role === MemberRole.PARAMETER_SERVER) {
      if (shardCount !== undefined && request.shardIndex >= shardCount) {
        throw invalidField("shard_index", `shard ${request.shardIndex} does not exist: the job has shards 0..${shardCount - 1}`);
      }
      if (!request.address) throw invalidField("address", "a parameter-server shard must give the host:port that workers reach it at");
      id = `ps-${request.shardIndex}`;
      // A shard process started again after its predecessor was lost takes its place.
      const previous = this.#members.get(id);
      if (previous !== undefined && previous.state !== WorkerState.LOST) {
        throw new TrainfleetError(Code.ALREADY_EXISTS, `shard_index: shard ${request.shardIndex} is already registered`, {
          field: "shard_index",
        });
      }
      this.#members.delete(id);
    } else {
      throw invalidField("role", "must be MEMBER_ROLE_WORKER or MEMBER_ROLE_PARAMETER_SERVER");
    }
    this.#makeRoom(maxRecords);
    const now = this.now();
    const member: Member = {
      id,
      role: request.role,
      host: request.host,
      address: request.address,
      dataAddress: request.dataAddress,
      shardIndex: request.shardIndex,
      backend: request.backend,
      identity,
      outbox: new AsyncQueue(),
      leaseExpiresAt: now + this.leaseMs,
      lastHeartbeat: now,
      state: WorkerState.REGISTERED,
      rank: -1,
      lastStep: 0,
      bytesRead: 0,
      timing: { stepMs: 0, computeMs: 0, communicateMs: 0, reports: 0 },
      shardStats: undefined,
      lastError: undefined,
    };
    this.#members.set(id, member);
    return member;
  }

  /** Prunes lost and stopped members, oldest first, until one more fits under `maxRecords`; refuses when only live ones are left. */
  #makeRoom(maxRecords: number): void {
    for (const [id, member] of this.#members) {
      if (this.#members.size < maxRecords) return;
      if (member.state === WorkerState.LOST || member.state === WorkerState.STOPPED) this.#members.delete(id);
    }
    if (this.#members.size >= maxRecords) throw tooManyMembers(maxRecords);
  }

  /** The member that serves shard `index`, if one registered. */
  shard(index: number): Member | undefined {
    return this.#members.get(`ps-${index}`);
  }

  /** The member with this id, if there is one. */
  find(memberId: string): Member | undefined {
    return this.#members.get(memberId);
  }

  get(memberId: string): Member {
    const member = this.#members.get(memberId);
    if (member === undefined)
      throw new TrainfleetError(Code.NOT_FOUND, `member_id: "${memberId}" is not a member of this job; register again`, {
        field: "member_id",
      });
    return member;
  }

  /** Renews a member's lease; a member marked lost must register again (it has no place in the job any more). */
  renew(memberId: string): number {
    const member = this.get(memberId);
    if (member.state === WorkerState.LOST) {
      throw new TrainfleetError(Code.NOT_FOUND, `member_id: ${memberId} was marked lost and left the job; register again to rejoin`, {
        field: "member_id",
      });
    }
    member.lastHeartbeat = this.now();
    member.leaseExpiresAt = member.lastHeartbeat + this.leaseMs;
    return member.leaseExpiresAt;
  }

  /** Adds `ms` to the lease of every member still in the job. */
  extendLeases(ms: number): void {
    for (const member of this.#members.values()) {
      if (member.state !== WorkerState.STOPPED && member.state !== WorkerState.LOST) member.leaseExpiresAt += ms;
    }
  }

  /** Members whose lease has run out. */
  expired(): Member[] {
    const now = this.now();
    return [...this.#members.values()].filter(
      (m) => m.state !== WorkerState.STOPPED && m.state !== WorkerState.LOST && m.leaseExpiresAt < now,
    );
  }

  workers(): Member[] {
    return [...this.#members.values()].filter((m) => m.role === MemberRole.WORKER);
  }

  /** Workers neither lost nor stopped, in the order they registered. */
  liveWorkers(): Member[] {
    return this.workers().filter((m) => m.state !== WorkerState.LOST && m.state !== WorkerState.STOPPED);
  }

  shards(): Member[] {
    return [...this.#members.values()].filter((m) => m.role === MemberRole.PARAMETER_SERVER).sort((a, b) => a.shardIndex - b.shardIndex);
  }

  all(): Member[] {
    return [...this.#members.values()];
  }
}
