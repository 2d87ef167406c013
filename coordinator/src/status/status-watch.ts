/**
 * Following a job's status, for every watcher alike: the gRPC WatchJob stream and the
 * HTTP event stream (GET /v1/jobs/{id}/watch) both read this generator, so they send the
 * same statuses at the same moments.
 *
 * Each update carries the coordinator's status revision, which grows by one with every
 * change. Status is level-based: a watcher that reads more slowly than the status changes
 * gets the newest status when it is ready (the changes in between are folded into it),
 * never a backlog. The final status (Succeeded or Failed) is always sent, and ends the watch.
 *
 * Progress is folded the same way: two statuses of the same phase go to a watcher at least
 * samePhaseIntervalMs apart, while a new phase goes out at once. Every step of a training job
 * is a change, and sending each one (the whole status, encoded and written) cost the
 * coordinator and each watcher more CPU per step than a worker's own overhead on a small model.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { JobPhase, JobStatus } from "@trainfleet/proto";
import { isFinished } from "@trainfleet/proto";

export interface StatusSource {
  readonly revision: number;
  /** The phase of the current status, without building it. */
  readonly phase: JobPhase;
  status(): JobStatus;
  changedSince(revision: number, signal: AbortSignal): Promise<void>;
}

/** The shortest time between two statuses of the same phase sent to one watcher (10 a second at most). */
export const samePhaseIntervalMs = 100;

export interface StatusUpdate {
  revision: number;
  status: JobStatus;
}

export interface WatchOptions {
  /**
   * The revision the watcher already has (an event stream's Last-Event-ID): the current
   * status is sent at once only if the revision has moved past it; otherwise the watch
   * starts with the next change (or ends at once, if the job has ended).
   */
  lastSeen?: number | undefined;
  signal: AbortSignal;
  /** Default samePhaseIntervalMs. */
  samePhaseIntervalMs?: number;
}

export async function* watchStatus(source: StatusSource, options: WatchOptions): AsyncGenerator<StatusUpdate> {
  const { signal } = options;
  const interval = options.samePhaseIntervalMs ?? samePhaseIntervalMs;
  let seen = options.lastSeen;
  if (seen === source.revision && isFinished(source.status().phase)) return;
  let sent: { phase: JobPhase; at: number } | undefined;
  for (;;) {
    const revision = source.revision;
    if (revision !== seen) {
      if (sent !== undefined && source.phase === sent.phase && performance.now() < sent.at + interval) {
        await sameOrNewPhase(source, sent, interval, signal);
        if (signal.aborted) return;
        continue;
      }
      const status = source.status();
      yield { revision, status };
      if (isFinished(status.phase)) return;
      seen = revision;
      sent = { phase: status.phase, at: performance.now() };
      continue;
    }
    if (signal.aborted) return;
    await source.changedSince(revision, signal);
  }
}

/** Waits until `interval` has passed since `sent`, or the phase is no longer the one sent (checked at each change), or abort. */
async function sameOrNewPhase(
  source: StatusSource,
  sent: { phase: JobPhase; at: number },
  interval: number,
  signal: AbortSignal,
): Promise<void> {
  const passed = delay(sent.at + interval - performance.now(), undefined, { signal }).catch(() => undefined);
  let waiting = true;
  void passed.then(() => (waiting = false));
  while (waiting && source.phase === sent.phase && !signal.aborted)
    await Promise.race([passed, source.changedSince(source.revision, signal)]);
}
