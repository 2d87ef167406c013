/**
 * A parameter shard's pull side (ParameterShard.waitForVersion, checkServing and
 * streamParameters) and the change notification its pulls wait on: every change of the
 * shard's state (a chunk applied, a push taken back, an assignment, an open, a restore)
 * wakes every waiting pull, which looks again. A pull belongs to the generation the shard
 * was open for when the pull first found it open, and ends ABORTED once a new generation
 * is assigned. In async mode a pull gets a copy of the newest whole version: a later
 * gradient overwrites the buffers while the copy may still be queued on a socket.
 */

import type { ServedVersion } from "@trainfleet/dataplane";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { ShardCore } from "./shard-core.js";
import { isAsync } from "./shard-core.js";

/** See ParameterShard.waitForVersion. */
export async function waitForShardVersion(s: ShardCore, jobId: string, minVersion: number, signal: AbortSignal): Promise<ServedVersion> {
  let generation: number | undefined;
  for (;;) {
    if (servesJob(s, jobId)) {
      generation = s.generation.pullGeneration(generation);
      if (generation !== undefined && s.version >= minVersion)
        return { version: s.version, generation, values: isAsync(s) ? s.params.slice() : s.params };
    }
    await nextChange(s, signal);
  }
}

/** See ParameterShard.checkServing. */
export function checkShardServing(s: ShardCore, served: ServedVersion): void {
  s.generation.pullGeneration(served.generation);
  // An async pull reads its own copy, which no later version touches.
  if (s.version !== served.version && !isAsync(s)) {
    throw new TrainfleetError(Code.ABORTED, `version moved from ${served.version} to ${s.version} during the pull; pull again`);
  }
}

/** See ParameterShard.streamParameters. */
export async function streamShardParameters(
  s: ShardCore,
  jobId: string,
  minVersion: number,
  signal: AbortSignal,
  send: (chunk: number, version: number, values: Float32Array) => void,
): Promise<number> {
  let sent: Uint8Array | undefined;
  /** For each chunk sent before its step was whole, its retraction count then. */
  let sentEarly: Map<number, number> | undefined;
  let remaining = 0;
  let generation: number | undefined;
  for (;;) {
    if (servesJob(s, jobId)) generation = s.generation.pullGeneration(generation);
    if (generation !== undefined && isAsync(s)) {
      if (s.version >= minVersion) {
        const version = s.version;
        const values = s.params.slice();
        for (let index = 0; index < s.chunks.length; index++) send(index, version, values);
        return version;
      }
    } else if (generation !== undefined) {
      if (sent === undefined || sent.length !== s.chunks.length) {
        sent = new Uint8Array(s.chunks.length);
        remaining = s.chunks.length;
      }
      const whole = s.version >= minVersion;
      if (!whole && sentEarly !== undefined) checkNotRetracted(s, sentEarly);
      if (whole || s.version + 1 === minVersion) {
        const version = whole ? s.version : s.version + 1;
        const values = whole ? s.params : s.next;
        for (let index = 0; index < sent.length; index++) {
          if (sent[index] === 1 || (!whole && !s.barrier.isApplied(index))) continue;
          sent[index] = 1;
          remaining--;
          if (!whole) (sentEarly ??= new Map()).set(index, s.barrier.retractions(index));
          send(index, version, values);
        }
        if (remaining === 0) return version;
      }
    }
    await nextChange(s, signal);
  }
}

/** A chunk handed out early was taken back by a push rejected part-way: what the reader has is void. */
function checkNotRetracted(s: ShardCore, sentEarly: ReadonlyMap<number, number>): void {
  for (const [index, retractions] of sentEarly) {
    if (s.barrier.retractions(index) !== retractions) {
      throw new TrainfleetError(
        Code.ABORTED,
        `chunk ${index} of the next version was taken back after it was sent (a push was rejected part-way); pull again once the step completes`,
      );
    }
  }
}

function servesJob(s: ShardCore, jobId: string): boolean {
  const config = s.config;
  if (config !== undefined && config.jobId !== jobId) {
    throw new TrainfleetError(Code.FAILED_PRECONDITION, `job_id: this shard serves job "${config.jobId}", not "${jobId}"`, {
      field: "job_id",
    });
  }
  return config !== undefined;
}

/** Wakes every pull waiting for a change; each looks at the shard again. */
export function notifyChange(s: ShardCore): void {
  const waiters = s.changed;
  s.changed = [];
  for (const wake of waiters) wake();
}

/** Resolves at the next notifyChange; CANCELLED when `signal` aborts first, its listener removed either way. */
function nextChange(s: ShardCore, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(TrainfleetError.from(signal.reason, Code.CANCELLED));
    const onAbort = () => {
      s.changed = s.changed.filter((w) => w !== wake);
      reject(TrainfleetError.from(signal.reason, Code.CANCELLED));
    };
    const wake = () => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    };
    signal.addEventListener("abort", onAbort, { once: true });
    s.changed.push(wake);
  });
}
