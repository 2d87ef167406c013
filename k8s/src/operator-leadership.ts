/**
 * Whether this operator replica may reconcile now, and what its probes say. Without leader
 * election it always may; with it, only while it holds the Lease (leader-election.ts), which it
 * competes for once its informers have synced, so that it never leads with an empty cache. Losing
 * the Lease is final: `failed()` resolves, the operator stops taking keys, the process exits.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { CoordinationV1Api } from "@kubernetes/client-node";
import type { TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import type { LeaderElectionTiming } from "./leader-election.js";
import { LeaderElector } from "./leader-election.js";
import { createLeaseLock } from "./lease-lock.js";
import type { OperatorProbes } from "./operator-health.js";

export interface LeaderElectionOptions {
  /** Where the Lease is: the operator's own namespace. */
  namespace: string;
  /** The Lease's name: one per operator installation. */
  name: string;
  /** This replica's name in the Lease, unique per process (leaderIdentity()). */
  identity: string;
  timing?: LeaderElectionTiming;
  /** Whether stopping gives the Lease up, so that a standby takes over at once. Default true. */
  releaseOnStop?: boolean;
}

export interface LeadershipOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  /** Undefined: no leader election, this replica always reconciles. */
  election: LeaderElectionOptions | undefined;
  /** It leads now: look at every job. */
  onStartedLeading(): void;
  /** It lost the Lease: stop reconciling at once. */
  onLost(why: TrainfleetError): void;
}

export class OperatorLeadership implements OperatorProbes {
  readonly #options: LeadershipOptions;
  readonly #elector: LeaderElector | undefined;
  #leading: boolean;
  #synced = false;
  #stopped = false;
  #failure: TrainfleetError | undefined;
  readonly #failed: Promise<TrainfleetError>;
  #fail: (error: TrainfleetError) => void = () => {};

  constructor(options: LeadershipOptions) {
    this.#options = options;
    this.#failed = new Promise((resolve) => (this.#fail = resolve));
    const { election, kubeConfig, logger } = options;
    // Without leader election the informers' first events are reconciled as they arrive.
    this.#leading = election === undefined;
    this.#elector =
      election === undefined
        ? undefined
        : new LeaderElector({
            lock: createLeaseLock(kubeConfig.makeApiClient(CoordinationV1Api), election.namespace, election.name),
            identity: election.identity,
            ...(election.timing === undefined ? {} : { timing: election.timing }),
            logger,
            onStartedLeading: () => this.#startLeading(),
            onStoppedLeading: (why) => this.#lost(why),
          });
  }

  /** Whether this replica reconciles now. */
  get leading(): boolean {
    return this.#leading;
  }

  /** Changes of the Lease's holder this replica has seen. */
  get transitions(): number {
    return this.#elector?.transitions ?? 0;
  }

  /** The informers have listed what they watch: this replica is ready, and competes for the Lease. */
  synced(): void {
    this.#synced = true;
    this.#elector?.start();
  }

  /** Resolves when this replica lost its Lease; pending while it works. */
  failed(): Promise<TrainfleetError> {
    return this.#failed;
  }

  notLive(): string | undefined {
    if (this.#failure !== undefined) return this.#failure.message;
    return this.#stopped ? "the operator has stopped" : undefined;
  }

  notReady(): string | undefined {
    const notLive = this.notLive();
    if (notLive !== undefined) return notLive;
    return this.#synced ? undefined : "the informers have not listed TrainingJobs, pods and Services yet";
  }

  /** Stops leading and competing; gives the Lease up unless election.releaseOnStop is false. Call once no reconcile runs. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#leading = false;
    await this.#elector?.stop(this.#options.election?.releaseOnStop ?? true);
  }

  #startLeading(): void {
    if (this.#stopped) return;
    this.#leading = true;
    this.#options.onStartedLeading();
  }

  #lost(why: TrainfleetError): void {
    this.#leading = false;
    this.#failure = why;
    this.#options.onLost(why);
    this.#fail(why);
  }
}
