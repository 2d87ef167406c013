/**
 * Leader election over a Lease, as client-go's leaderelection package does it (client-node ships
 * none): a candidate takes the Lease when nobody holds it or its holder has not renewed it for
 * leaseDurationSeconds, measured on this process's own clock from when it last saw the Lease
 * change (so clocks of different nodes never have to agree); the leader renews it every
 * retryPeriod; every write carries the resourceVersion it read, so of two candidates only one
 * wins. A leader that has not renewed within renewDeadline, or that finds another holder in the
 * Lease, stops leading at once and for good (its process exits and is started again, as
 * controller-runtime's managers do); a leader that stops on purpose releases the Lease, so that a
 * standby takes over without waiting for it to expire.
 */
import { randomUUID } from "node:crypto";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { abortableDelay } from "@trainfleet/runtime";
import type { LeaseLock, LeaseRecord, ObservedLease } from "./lease-lock.js";

export interface LeaderElectionTiming {
  /** How long a Lease nobody renews stays held; whole seconds, as the Lease stores it. */
  leaseDurationSeconds: number;
  /** How long a leader keeps trying to renew before it steps down; shorter than the lease. */
  renewDeadlineMs: number;
  /** How often a candidate tries to take the Lease and the leader renews it. */
  retryPeriodMs: number;
}

/** client-go's and controller-runtime's defaults. */
export const defaultLeaderElectionTiming: LeaderElectionTiming = { leaseDurationSeconds: 15, renewDeadlineMs: 10_000, retryPeriodMs: 2000 };

/** client-go waits up to this much longer than retryPeriod between tries to take the Lease, so candidates spread out. */
const jitterFactor = 1.2;

/** Why `timing` cannot work, naming the option; undefined when it can. */
export function leaderElectionTimingProblem(timing: LeaderElectionTiming): string | undefined {
  const { leaseDurationSeconds, renewDeadlineMs, retryPeriodMs } = timing;
  if (!Number.isInteger(leaseDurationSeconds) || leaseDurationSeconds < 1)
    return `leaseDurationSeconds must be a whole number of seconds, at least 1 (got ${leaseDurationSeconds})`;
  if (!(retryPeriodMs > 0)) return `retryPeriodMs must be positive (got ${retryPeriodMs})`;
  if (!(renewDeadlineMs < leaseDurationSeconds * 1000))
    return `renewDeadlineMs (${renewDeadlineMs}) must be shorter than the lease (${leaseDurationSeconds * 1000} ms): a leader must step down before a standby may take over`;
  if (!(renewDeadlineMs > jitterFactor * retryPeriodMs))
    return `renewDeadlineMs (${renewDeadlineMs}) must be longer than ${jitterFactor} x retryPeriodMs (${retryPeriodMs}): a leader must get to try renewing at least once`;
  return undefined;
}

/** The Lease holder's name for this process: its pod's name and a random suffix, so that a restarted pod of the same name is someone new. */
export function leaderIdentity(podName: string): string {
  return `${podName}_${randomUUID()}`;
}

export interface LeaderElectorOptions {
  lock: LeaseLock;
  identity: string;
  timing?: LeaderElectionTiming;
  logger: Logger;
  /** This candidate now leads: start working. */
  onStartedLeading(): void;
  /** This leader lost the Lease: stop working at once. Not called after `stop()`. */
  onStoppedLeading(why: TrainfleetError): void;
  /** Milliseconds on a clock that only goes forward. Default: performance.now. */
  clock?: () => number;
}

export class LeaderElector {
  readonly #options: LeaderElectorOptions;
  readonly #timing: LeaderElectionTiming;
  readonly #clock: () => number;
  readonly #stop = new AbortController();
  #loop: Promise<void> | undefined;
  #leading = false;
  /** The newest Lease seen, and when (on #clock) it was first seen in that version. */
  #observed: { lease: ObservedLease; at: number } | undefined;
  #lastHolder: string | undefined;
  /** Changes of the Lease's holder this candidate has seen (a release and the next holder count once). */
  transitions = 0;

  constructor(options: LeaderElectorOptions) {
    const timing = options.timing ?? defaultLeaderElectionTiming;
    const problem = leaderElectionTimingProblem(timing);
    if (problem !== undefined) throw new TrainfleetError(Code.INVALID_ARGUMENT, `leader election: ${problem}`);
    this.#options = options;
    this.#timing = timing;
    this.#clock = options.clock ?? (() => performance.now());
  }

  get leading(): boolean {
    return this.#leading;
  }

  /** Who holds the Lease as last seen ("" when released; undefined before it was first read). */
  get holder(): string | undefined {
    return this.#observed?.lease.record.holderIdentity;
  }

  start(): void {
    this.#loop ??= this.#run(this.#stop.signal);
  }

  /** Stops trying and renewing; a leader then releases the Lease unless `release` is false (as if killed). */
  async stop(release = true): Promise<void> {
    const wasLeading = this.#leading;
    this.#leading = false;
    this.#stop.abort();
    await this.#loop;
    if (release && wasLeading) await this.#release();
  }

  async #run(signal: AbortSignal): Promise<void> {
    const { identity, logger, lock } = this.#options;
    const { retryPeriodMs, renewDeadlineMs } = this.#timing;
    try {
      logger.info({ lease: lock.description, identity }, "waiting to lead");
      // When the last successful try began.
      let renewedAt: number;
      for (;;) {
        renewedAt = this.#clock();
        if (await this.#tryAcquireOrRenew(this.#timing.leaseDurationSeconds * 1000)) break;
        await abortableDelay(retryPeriodMs * (1 + Math.random() * (jitterFactor - 1)), signal);
      }
      if (signal.aborted) return;
      this.#leading = true;
      logger.info({ lease: lock.description, identity }, "leading");
      this.#options.onStartedLeading();
      for (;;) {
        await abortableDelay(retryPeriodMs, signal);
        // Counted from when the try began, not when its answer came: the leader stops early rather than late.
        const triedAt = this.#clock();
        const left = renewedAt + renewDeadlineMs - triedAt;
        if (left > 0 && (await this.#tryAcquireOrRenew(left))) {
          renewedAt = triedAt;
          continue;
        }
        if (signal.aborted) return;
        const holder = this.holder;
        if (holder !== undefined && holder !== "" && holder !== identity) return this.#lost(`${holder} holds it now`);
        if (this.#clock() >= renewedAt + renewDeadlineMs)
          return this.#lost(`it was not renewed within the renew deadline (${renewDeadlineMs} ms)`);
      }
    } catch (error) {
      if (signal.aborted) return;
      // Never expected (each try catches its own errors): stop, as after a lost Lease, rather than lead unsure.
      this.#lost(`leader election failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  #lost(why: string): void {
    this.#leading = false;
    const error = new TrainfleetError(
      Code.ABORTED,
      `lost the leader Lease ${this.#options.lock.description}: ${why}; this operator stops reconciling and exits, to be started again as a standby`,
    );
    this.#options.logger.error({ lease: this.#options.lock.description, identity: this.#options.identity }, error.message);
    this.#options.onStoppedLeading(error);
  }

  /** One try (client-go's tryAcquireOrRenew), cut off after `timeoutMs`: whether this candidate holds the Lease now. */
  async #tryAcquireOrRenew(timeoutMs: number): Promise<boolean> {
    const { lock, identity, logger } = this.#options;
    const deadline = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(Math.max(1, Math.ceil(timeoutMs)))]);
    const durationSeconds = this.#timing.leaseDurationSeconds;
    try {
      const current = await lock.get(deadline);
      // Taken after the read: a Lease is never taken before it expired, as the read showed it.
      const now = new Date();
      if (current === undefined) {
        const record = {
          holderIdentity: identity,
          leaseDurationSeconds: durationSeconds,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: 0,
        };
        return this.#wrote(await lock.create(record, deadline));
      }
      this.#observe(current);
      const held = current.record;
      const ours = held.holderIdentity === identity;
      if (!ours && held.holderIdentity !== "" && this.#valid()) {
        logger.debug({ lease: lock.description, holder: held.holderIdentity }, "the Lease is held by another candidate");
        return false;
      }
      const record: LeaseRecord = {
        holderIdentity: identity,
        leaseDurationSeconds: durationSeconds,
        acquireTime: ours ? held.acquireTime : now,
        renewTime: now,
        leaseTransitions: ours ? held.leaseTransitions : held.leaseTransitions + 1,
      };
      return this.#wrote(await lock.update(record, current.resourceVersion, deadline));
    } catch (error) {
      if (this.#stop.signal.aborted) return false;
      logger.warn(
        { lease: lock.description, error: error instanceof Error ? error.message : String(error) },
        "cannot read or write the leader Lease; trying again",
      );
      return false;
    }
  }

  #wrote(written: ObservedLease | undefined): boolean {
    if (written === undefined) return false;
    this.#observe(written);
    return true;
  }

  #observe(lease: ObservedLease): void {
    if (this.#observed?.lease.resourceVersion !== lease.resourceVersion) this.#observed = { lease, at: this.#clock() };
    const holder = lease.record.holderIdentity;
    if (holder === "") return;
    if (this.#lastHolder !== undefined && this.#lastHolder !== holder) this.transitions++;
    this.#lastHolder = holder;
  }

  /** Whether the Lease last seen is still held: renewed within its duration, on this process's clock. */
  #valid(): boolean {
    const observed = this.#observed;
    return observed !== undefined && observed.at + observed.lease.record.leaseDurationSeconds * 1000 > this.#clock();
  }

  /** Gives the Lease up (client-go's release): no holder, expired in a second. */
  async #release(): Promise<void> {
    const { lock, identity, logger } = this.#options;
    const deadline = AbortSignal.timeout(this.#timing.renewDeadlineMs);
    try {
      const current = await lock.get(deadline);
      if (current?.record.holderIdentity !== identity) return;
      const now = new Date();
      const record = {
        holderIdentity: "",
        leaseDurationSeconds: 1,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: current.record.leaseTransitions,
      };
      if (await lock.update(record, current.resourceVersion, deadline))
        logger.info({ lease: lock.description, identity }, "released the leader Lease");
    } catch (error) {
      logger.warn(
        { lease: lock.description, error: error instanceof Error ? error.message : String(error) },
        "cannot release the leader Lease; a standby takes over when it expires",
      );
    }
  }
}
