/**
 * Following a job's status, for every watcher alike: the gRPC WatchJob stream and the
 * HTTP event stream (GET /v1/jobs/{id}/watch) both read this generator, so they send the
 * same statuses at the same moments.
 *
 * Each update carries the coordinator's status revision, which grows by one with every
 * change. Status is level-based: a watcher that reads more slowly than the status changes
 * gets the newest status when it is ready (the changes in between are folded into it),
 * never a backlog. The final status (Succeeded or Failed) is always sent, and ends the watch.
 */
import type { JobStatus } from "@trainfleet/proto";
import { isFinished } from "../job/job-phase.js";

export interface StatusSource {
  readonly revision: number;
  status(): JobStatus;
  changedSince(revision: number, signal: AbortSignal): Promise<void>;
}

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
}

export async function* watchStatus(source: StatusSource, options: WatchOptions): AsyncGenerator<StatusUpdate> {
  const { signal } = options;
  let seen = options.lastSeen;
  if (seen === source.revision && isFinished(source.status().phase)) return;
  for (;;) {
    const revision = source.revision;
    if (revision !== seen) {
      const status = source.status();
      yield { revision, status };
      if (isFinished(status.phase)) return;
      seen = revision;
      continue;
    }
    if (signal.aborted) return;
    await source.changedSince(revision, signal);
  }
}
