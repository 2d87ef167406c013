/**
 * Who may make each member call, over mutual TLS: the caller's certificate (its identity,
 * proto's peer-identity.ts) must hold the role the call needs, and a member's calls must
 * come from the identity that registered it, so no process can speak for another:
 * - Register: a worker as a worker; a parameter server only for the shard its certificate
 *   names (ps-{index}), so replacing a live shard takes that shard's identity.
 * - Heartbeat, Assignments, reports: only the identity that registered `member_id`.
 * - ReportFailure: the worker itself (by member id, or before registering by its host,
 *   which must be its certificate's name), or an operator (`trainfleet run` reports a child
 *   that died, the Kubernetes operator a pod).
 * In plaintext (no TransportSecurity, `--insecure`) every check passes: there is nobody to
 * check, which the process says on every start.
 */
import type { PeerIdentity, PeerRole, TransportSecurity } from "@trainfleet/proto";
import { Code, MemberRole, TrainfleetError } from "@trainfleet/proto";

export class MemberAccess {
  readonly #jobId: string | undefined;
  /** By member id: the identity ("role/name") that registered it. */
  readonly #registeredBy = new Map<string, string>();

  constructor(security: TransportSecurity | undefined) {
    this.#jobId = security?.identity.jobId;
  }

  /** Throws PERMISSION_DENIED unless `identity` may register as `role` (for shard `shardIndex`). */
  checkRegister(identity: PeerIdentity | undefined, role: MemberRole, shardIndex: number): void {
    if (this.#jobId === undefined) return;
    if (role === MemberRole.PARAMETER_SERVER) this.#require(identity, "Register", ["parameter-server"], `ps-${shardIndex}`);
    else this.#require(identity, "Register", ["worker"]);
  }

  /** Remembers who registered `memberId`: its calls must come from the same identity. */
  registered(memberId: string, identity: PeerIdentity | undefined): void {
    if (this.#jobId === undefined || identity === undefined) return;
    this.#registeredBy.set(memberId, key(identity));
  }

  /** Throws PERMISSION_DENIED unless `identity` registered `memberId` (an unknown member id is the coordinator's to refuse). */
  checkMember(identity: PeerIdentity | undefined, memberId: string, method: string): void {
    if (this.#jobId === undefined) return;
    const caller = this.#require(identity, method, ["worker", "parameter-server"]);
    const owner = this.#registeredBy.get(memberId);
    if (owner !== undefined && owner !== key(caller)) {
      throw new TrainfleetError(
        Code.PERMISSION_DENIED,
        `${method}: member ${memberId} registered as ${owner}; ${key(caller)} may not speak for it`,
      );
    }
  }

  /** ReportFailure: the worker itself, or an operator. */
  checkFailureReport(identity: PeerIdentity | undefined, workerId: string, host: string): void {
    if (this.#jobId === undefined) return;
    const caller = this.#require(identity, "ReportFailure", ["worker", "operator"]);
    if (caller.role === "operator") return;
    if (workerId !== "") return this.checkMember(caller, workerId, "ReportFailure");
    if (host !== caller.name) {
      throw new TrainfleetError(
        Code.PERMISSION_DENIED,
        `ReportFailure: worker ${caller.name} may report only its own failure, not host ${JSON.stringify(host)}'s`,
      );
    }
  }

  #require(identity: PeerIdentity | undefined, method: string, roles: readonly PeerRole[], name?: string): PeerIdentity {
    const problem =
      identity === undefined
        ? "the caller's certificate names no trainfleet identity"
        : identity.jobId !== this.#jobId
          ? `the caller's certificate is for job ${identity.jobId}, not ${this.#jobId}`
          : !roles.includes(identity.role)
            ? `the caller is a ${identity.role} (${identity.name}), and ${method} takes a ${roles.join(" or ")}`
            : name !== undefined && identity.name !== name
              ? `the caller is ${identity.role} ${identity.name}, and only ${name} may do this`
              : undefined;
    if (problem !== undefined) throw new TrainfleetError(Code.PERMISSION_DENIED, `${method}: ${problem}`);
    return identity!;
  }
}

function key(identity: PeerIdentity): string {
  return `${identity.role}/${identity.name}`;
}
