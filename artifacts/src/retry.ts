/**
 * Retries for remote reads. A source sorts each failure once: a `TransientFailure` (the
 * network or the server may answer next time) is tried again with capped exponential
 * backoff and jitter; a `TrainfleetError` (no such file, access denied, a bad answer) is
 * final at once, because asking again gets the same answer. Aborting stops at once, even
 * in the middle of a backoff.
 *
 * | failure                                              | retried |
 * |------------------------------------------------------|---------|
 * | connection refused / reset / dropped, DNS, timeout   | yes     |
 * | HTTP 408, 429, 5xx; S3 SlowDown, InternalError, ...  | yes     |
 * | HTTP 404 / NoSuchKey / NoSuchBucket -> NOT_FOUND      | no      |
 * | HTTP 401, 403 -> PERMISSION_DENIED                   | no      |
 * | any other 4xx, a malformed answer                    | no      |
 */
import { Code, TrainfleetError } from "@trainfleet/proto";

/** A failure worth another try; `message` says what happened, without credentials. */
export class TransientFailure extends Error {
  override readonly name = "TransientFailure";
}

export interface RetryPolicy {
  /** Tries in all (the first one included); at least 1. */
  readonly attempts: number;
  /** The wait before the second try; it doubles each time. */
  readonly initialDelayMs: number;
  /** No wait is longer than this. */
  readonly maxDelayMs: number;
  /** Each request (headers and body) must finish within this, or it counts as a transient failure. */
  readonly timeoutMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { attempts: 4, initialDelayMs: 100, maxDelayMs: 2_000, timeoutMs: 30_000 };

/** The wait before try `attempt + 1`: half the doubled delay, plus up to as much again at random, so readers spread out. */
export function backoffDelayMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const full = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (attempt - 1));
  return full / 2 + random() * (full / 2);
}

/** The error for a read cancelled by its caller's signal. */
export function cancelled(uri: string, signal: AbortSignal | undefined): TrainfleetError {
  return new TrainfleetError(Code.CANCELLED, `${uri}: read cancelled`, { cause: signal?.reason });
}

/**
 * Runs `attempt` until it succeeds, fails for good, or the tries run out. `attempt`
 * receives a signal that aborts on the caller's abort or on the per-request timeout.
 * `fix` ends the UNAVAILABLE message: what the user can check.
 */
export async function withRetries<T>(
  uri: string,
  policy: RetryPolicy,
  fix: string,
  attempt: (signal: AbortSignal) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  let last = "";
  for (let tried = 1; ; tried++) {
    if (signal?.aborted) throw cancelled(uri, signal);
    const scope = requestScope(policy.timeoutMs, signal);
    try {
      return await attempt(scope.signal);
    } catch (error) {
      if (signal?.aborted) throw cancelled(uri, signal);
      if (scope.timedOut()) last = `no answer within ${policy.timeoutMs} ms`;
      else if (error instanceof TransientFailure) last = error.message;
      else if (error instanceof TrainfleetError) throw error;
      else throw new TrainfleetError(Code.INTERNAL, `${uri}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      if (tried >= policy.attempts) {
        throw new TrainfleetError(
          Code.UNAVAILABLE,
          `${uri}: unreachable after ${tried} ${tried === 1 ? "attempt" : "attempts"}: ${last}. Fix: ${fix}`,
          { cause: error },
        );
      }
    } finally {
      scope.dispose();
    }
    await sleep(backoffDelayMs(policy, tried), uri, signal);
  }
}

/** A signal for one request: aborted by the caller's signal or by the timeout; `dispose` removes the timer and the listener. */
function requestScope(timeoutMs: number, outer: AbortSignal | undefined) {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new TransientFailure(`no answer within ${timeoutMs} ms`));
  }, timeoutMs);
  const onAbort = () => controller.abort(outer?.reason);
  outer?.addEventListener("abort", onAbort, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    dispose: () => {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
    },
  };
}

function sleep(ms: number, uri: string, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled(uri, signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelled(uri, signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
