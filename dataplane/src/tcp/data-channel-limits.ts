/**
 * The bounds on a shard's TCP data channel, so that a stranger on the network cannot take
 * the shard's memory or its connections: how many connections it holds, how long one may
 * take to say HELLO and stay silent, and how many requests one may have waiting for replies.
 * Payload memory is bounded by the frame parser: a refused frame is read through a small
 * shared buffer, and a frame of a type the shard does not take closes the connection at its header.
 */
import { invalidField } from "@trainfleet/proto";

export interface DataChannelLimits {
  /** Connections held at once; one more gets an ERROR frame (RESOURCE_EXHAUSTED) and is closed. */
  maxConnections: number;
  /** A connection that has not sent a whole HELLO this long after connecting is closed. */
  helloTimeoutMs: number;
  /** A connection that sends no frame this long, with no request of its own waiting for a reply, is closed (the client reconnects). */
  idleTimeoutMs: number;
  /** Requests sent and not yet answered on one connection (a worker has at most two: a pull and a push). */
  maxPendingRequests: number;
}

/** What `trainfleet ps` flags and ShardOptions may set; unset ones take the defaults. */
export type DataChannelLimitOptions = { [K in keyof DataChannelLimits]?: number | undefined };

export const defaultDataChannelLimits: DataChannelLimits = {
  maxConnections: 256,
  helloTimeoutMs: 10_000,
  // Long enough for a slow step or evaluation; a worker's connection that is cut reconnects on its next request.
  idleTimeoutMs: 300_000,
  maxPendingRequests: 16,
};

/** The flag that sets each limit, named in refusals so that an operator knows how to raise it. */
export const dataChannelLimitFlags: Record<keyof DataChannelLimits, string> = {
  maxConnections: "--data-max-connections",
  helloTimeoutMs: "--data-hello-timeout-ms",
  idleTimeoutMs: "--data-idle-timeout-ms",
  maxPendingRequests: "--data-max-pending-requests",
};

/** Defaults, then `options`; each must be a positive integer. */
export function resolveDataChannelLimits(options: DataChannelLimitOptions = {}): DataChannelLimits {
  const limits = { ...defaultDataChannelLimits };
  for (const key of Object.keys(limits) as (keyof DataChannelLimits)[]) {
    const value = options[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 1)
      throw invalidField(dataChannelLimitFlags[key].slice(2), `must be a positive integer, not ${value}`);
    limits[key] = value;
  }
  return limits;
}
