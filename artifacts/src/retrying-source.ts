/**
 * A remote ByteSource from its three single requests (size, a range, the whole file): each
 * is retried under the policy, ranges are assembled from as many replies as the server
 * needs, and the size is asked once. The http(s) and s3 sources differ only in their requests.
 */
import { checkReadArguments } from "./byte-range.js";
import type { ByteSource } from "./byte-source-interface.js";
import type { RangeReply } from "./read-ranges.js";
import { readRanges } from "./read-ranges.js";
import type { RetryPolicy } from "./retry.js";
import { withRetries } from "./retry.js";

export interface SingleRequests {
  sizeOnce(signal: AbortSignal): Promise<number>;
  rangeOnce(start: number, length: number, signal: AbortSignal): Promise<RangeReply>;
  readAllOnce(signal: AbortSignal): Promise<Uint8Array>;
}

/** `fix`: what the error after the last try tells the user to check. */
export function retryingSource(uri: string, policy: RetryPolicy, fix: string, requests: SingleRequests): ByteSource {
  let knownSize: number | undefined;
  return {
    uri,
    size: async (signal?: AbortSignal) => {
      knownSize ??= await withRetries(uri, policy, fix, requests.sizeOnce, signal);
      return knownSize;
    },
    read: async (offset: number, length: number, signal?: AbortSignal) => {
      checkReadArguments(uri, offset, length);
      return readRanges(offset, length, (start, count) =>
        withRetries(uri, policy, fix, (attempt) => requests.rangeOnce(start, count, attempt), signal),
      );
    },
    readAll: (signal?: AbortSignal) => withRetries(uri, policy, fix, requests.readAllOnce, signal),
  };
}
