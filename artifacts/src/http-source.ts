/**
 * A file behind an http(s):// URL, read with Node's fetch and `Range` requests. Every reply
 * is checked against its request (status, Content-Range, length) before its bytes are used;
 * transient failures are retried (retry.ts). `user:password@` in the URL becomes a Basic
 * `Authorization` header (fetch refuses such URLs) and never appears in `uri` or messages.
 */
import { Code, TrainfleetError } from "@trainfleet/proto";
import { checkAnswerRange, parseContentRange, parseUnsatisfiedRange, rangeHeader, reachesEnd } from "./byte-range.js";
import type { ByteSource } from "./byte-source-interface.js";
import { concatBytes } from "./read-ranges.js";
import { TransientFailure } from "./retry.js";
import { retryingSource } from "./retrying-source.js";
import { redactUri, scrub, secretsOf } from "./safe-uri.js";
import type { ResolvedSourceOptions } from "./source-options.js";

export function createHttpSource(location: string, options: ResolvedSourceOptions): ByteSource {
  const uri = redactUri(location);
  const secrets = secretsOf(location);
  const target = new URL(location);
  const headers: Record<string, string> = { "accept-encoding": "identity", ...options.httpHeaders };
  if (target.username !== "" || target.password !== "") {
    const basic = `${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`;
    headers.authorization = `Basic ${Buffer.from(basic).toString("base64")}`;
    target.username = "";
    target.password = "";
  }
  const { policy, maxWholeBodyBytes } = options;
  const fix = `check that ${uri} is reachable from here (DNS, proxy, firewall) and that its server is up`;
  const denied =
    "check the credentials: the user:password in the URL, the signature and expiry of a presigned URL, or the authorization in SourceOptions.httpHeaders";

  const request = async (signal: AbortSignal, method: "GET" | "HEAD", range?: string): Promise<Response> => {
    try {
      return await fetch(target, { method, headers: range === undefined ? headers : { ...headers, range }, signal });
    } catch (error) {
      throw networkFailure(uri, error, secrets, signal);
    }
  };

  /** The body; with a `limit`, a larger one is refused (a server that ignores Range) before or as it arrives. */
  const body = async (response: Response, signal: AbortSignal, limit = Number.POSITIVE_INFINITY): Promise<Uint8Array> => {
    const declared = contentLength(response);
    if (declared !== undefined && declared > limit) {
      await response.body?.cancel();
      throw wholeBodyTooLarge(uri, declared, limit);
    }
    const chunks: Uint8Array[] = [];
    let received = 0;
    try {
      for await (const chunk of response.body ?? []) {
        received += chunk.byteLength;
        if (received > limit) throw wholeBodyTooLarge(uri, received, limit);
        chunks.push(chunk);
      }
    } catch (error) {
      if (error instanceof TrainfleetError) throw error;
      throw networkFailure(uri, error, secrets, signal);
    }
    if (declared !== undefined && received !== declared)
      throw new TransientFailure(`the reply was cut short: ${received} of ${declared} bytes`);
    return concatBytes(chunks, received);
  };

  /** One try at [start, start + length): the bytes sent, and whether they reach the end of the file. */
  const rangeOnce = async (start: number, length: number, signal: AbortSignal) => {
    const response = await request(signal, "GET", rangeHeader(start, length));
    if (response.status === 206) {
      const range = checkAnswerRange(uri, response.headers.get("content-range"), start, length);
      const bytes = await body(response, signal);
      const expected = range.end - range.start + 1;
      if (bytes.length < expected) throw new TransientFailure(`the reply was cut short: ${bytes.length} of ${expected} bytes`);
      if (bytes.length > expected) {
        throw new TrainfleetError(
          Code.FAILED_PRECONDITION,
          `${uri}: the reply had ${bytes.length} bytes where its Content-Range promised ${expected}`,
        );
      }
      return { bytes, atEnd: reachesEnd(range) };
    }
    if (response.status === 416) {
      // The range starts at or past the end: no bytes, as a local file read there gives.
      await response.body?.cancel();
      return { bytes: new Uint8Array(0), atEnd: true };
    }
    if (response.status === 200) {
      // The server ignores Range and sends the whole file: usable only while it is small.
      const whole = await body(response, signal, maxWholeBodyBytes);
      return { bytes: whole.subarray(start, start + length), atEnd: true };
    }
    throw await statusFailure(uri, response, fix, denied);
  };

  const sizeOnce = async (signal: AbortSignal): Promise<number> => {
    const head = await request(signal, "HEAD");
    const length = contentLength(head);
    if (head.ok && length !== undefined) return length;
    if (!head.ok && head.status !== 405 && head.status !== 501) throw await statusFailure(uri, head, fix, denied);
    // No HEAD, or no length in its reply: ask for the first byte and read the total from Content-Range.
    const probe = await request(signal, "GET", "bytes=0-0");
    if (probe.status === 206) {
      const range = parseContentRange(probe.headers.get("content-range"));
      await probe.body?.cancel();
      if (range?.total !== undefined) return range.total;
      throw new TrainfleetError(
        Code.FAILED_PRECONDITION,
        `${uri}: the server does not say how large the file is (no Content-Length, no total in Content-Range)`,
      );
    }
    if (probe.status === 416) {
      const total = parseUnsatisfiedRange(probe.headers.get("content-range"));
      await probe.body?.cancel();
      return total ?? 0;
    }
    if (probe.status === 200) return (await body(probe, signal, maxWholeBodyBytes)).length;
    throw await statusFailure(uri, probe, fix, denied);
  };

  const readAllOnce = async (signal: AbortSignal): Promise<Uint8Array> => {
    const response = await request(signal, "GET");
    if (response.status !== 200) throw await statusFailure(uri, response, fix, denied);
    return body(response, signal);
  };

  return retryingSource(uri, policy, fix, { sizeOnce, rangeOnce, readAllOnce });
}

function contentLength(response: Response): number | undefined {
  const header = response.headers.get("content-length");
  if (header === null || !/^\d+$/.test(header.trim())) return undefined;
  return Number(header);
}

function wholeBodyTooLarge(uri: string, bytes: number, limit: number): TrainfleetError {
  return new TrainfleetError(
    Code.FAILED_PRECONDITION,
    `${uri}: the server ignores Range requests and sends the whole file (${bytes}+ bytes), over the ${limit}-byte limit for reading a file whole. ` +
      "Fix: serve it from a server that honours HTTP range requests (S3, nginx, most CDNs), or raise SourceOptions.maxWholeBodyBytes",
  );
}

/** A reply that is not what was asked for: NOT_FOUND, PERMISSION_DENIED, a transient failure, or a final error. */
async function statusFailure(uri: string, response: Response, fix: string, denied: string): Promise<Error> {
  await response.body?.cancel();
  const what = `HTTP ${response.status}${response.statusText === "" ? "" : ` ${response.statusText}`}`;
  if (response.status === 404 || response.status === 410) return new TrainfleetError(Code.NOT_FOUND, `${uri}: no such file (${what})`);
  if (response.status === 401 || response.status === 403) {
    return new TrainfleetError(Code.PERMISSION_DENIED, `${uri}: access denied (${what}). Fix: ${denied}`);
  }
  if (response.status === 408 || response.status === 429 || response.status >= 500) return new TransientFailure(what);
  return new TrainfleetError(Code.FAILED_PRECONDITION, `${uri}: the server answered ${what}. Fix: ${fix}`);
}

/**
 * What fetch threw: a network failure (refused, reset, DNS, dropped mid-body) is transient;
 * a request fetch could not even build (a bad header) is final. An abort is passed on
 * for withRetries to sort into a cancel or a timeout.
 */
function networkFailure(uri: string, error: unknown, secrets: readonly string[], signal: AbortSignal): Error {
  if (signal.aborted) return error instanceof Error ? error : new Error(String(error));
  const reason = scrub(describe(error), secrets);
  if (error instanceof TypeError && error.cause === undefined && error.message !== "terminated") {
    return new TrainfleetError(Code.INVALID_ARGUMENT, `${uri}: ${reason}`, { cause: error });
  }
  return new TransientFailure(reason);
}

/** The innermost useful message of an error chain (fetch's own is only "fetch failed"). */
function describe(error: unknown): string {
  let best = error instanceof Error ? error.message : String(error);
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (current.message !== "" && current.message !== "fetch failed") best = current.message;
    else if (typeof code === "string") best = code;
    current = current instanceof AggregateError && current.errors.length > 0 ? current.errors[0] : current.cause;
  }
  return best;
}
