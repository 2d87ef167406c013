/**
 * What a Coordinator is built with: its job (or none, to wait for SubmitJob), leases, the
 * clock, where checkpoints, events and its state go, and what a restarted or resumed
 * coordinator starts from. Its own file so that the facade (coordinator.ts) stays a list
 * of its calls.
 */
import type { Logger } from "@trainfleet/runtime";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import type { LoadedCheckpoint } from "../checkpoints/checkpoint-store.js";
import type { EventBus } from "../events/event-bus.js";
import type { StateStore } from "../state/state-store.js";
import type { LedgerAudit } from "../steps/ledger-audit.js";
import type { TrainedJob } from "./job-end.js";

export interface CoordinatorOptions {
  /** A spec resolved by resolveJobSpec, or none to wait for SubmitJob. */
  spec?: ResolvedJobSpec | undefined;
  leaseMs: number;
  logger: Logger;
  now?: () => number;
  /** Steps handed to a worker beyond the last completed one, so it never waits on us. */
  lookahead?: number;
  /** Called once training and evaluation are done, before members are told to stop. */
  onTrained?: (job: TrainedJob) => Promise<void>;
  /** Where checkpoints go (a folder every member reaches); none: no checkpoints, not even on SIGTERM. */
  checkpointDir?: string | undefined;
  /** A verified checkpoint to resume from (loadCheckpoint); the spec must be its spec. */
  resume?: LoadedCheckpoint | undefined;
  /** How long to wait for the shards' files of a checkpoint on stop (default 60 s). */
  checkpointWaitMs?: number;
  /** Records which samples each completed step consumed (--ledger-audit). */
  ledgerAudit?: LedgerAudit | undefined;
  /** Where lifecycle JobEvents and per-step StepMetrics go (hints; the status is the truth). None: not published. */
  events?: EventBus | undefined;
  /** Where the state a restarted coordinator resumes from is saved. None: a restart starts the job afresh. */
  stateStore?: StateStore | undefined;
  /** This coordinator was restarted with the job running: generations continue above this one, and every shard is restored (from `resume`, or to the initial parameters). */
  restartedAt?: { generation: number } | undefined;
}
