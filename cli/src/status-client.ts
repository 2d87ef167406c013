/**
 * A client of the coordinator's HTTP status API, for `trainfleet status` and `trainfleet
 * run`: one GET of the job's status, or its event stream followed to the end of the job,
 * with the job's read token as `Authorization: Bearer` when there is one. When the
 * stream's connection drops, it reconnects with Last-Event-ID, so it resumes with the
 * newest status instead of starting over; a refused token is never retried. fetch's errors
 * are translated here, and only here.
 */

import type { JsonValue } from "@bufbuild/protobuf";
import type { JobStatus } from "@trainfleet/proto";
import { Code, isFinished, jobStatusFromJson, statusPaths, TrainfleetError } from "@trainfleet/proto";
import { abortableDelay, codeFromName, readServerSentEvents } from "@trainfleet/runtime";
import { UsageError } from "./flags.js";

export interface StatusTarget {
  /** http://host:port */
  origin: string;
  jobId: string;
  /** The bearer token to send, and where it came from (for the error when it is refused). */
  token?: { value: string; from: string } | undefined;
}

/** How to get a token into `trainfleet status`, for the errors that ask for one. */
const tokenHelp =
  "give --token-file FILE or TRAINFLEET_TOKEN (a `trainfleet run` job folder holds its read token in tokens/read), or give `trainfleet status` the job folder instead of the URL";

export interface StatusReading {
  status: JobStatus;
  /** The status as the server sent it (proto JSON). */
  json: JsonValue;
}

/**
 * Where to read: a job URL as `trainfleet run` prints it (http://HOST:PORT/v1/jobs/JOB),
 * or the coordinator's http://HOST:PORT (or HOST:PORT) and the job id.
 */
export function statusTarget(text: string, jobId: string): StatusTarget {
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  } catch {
    throw new UsageError(`--url: "${text}" is not a URL; give http://HOST:PORT/v1/jobs/JOB or http://HOST:PORT`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`--url: "${text}" is not an http(s) URL`);
  const match = /^\/v1\/jobs\/([^/]+)\/?(?:watch|workers)?$/.exec(url.pathname);
  if (match !== null) return { origin: url.origin, jobId: decodeURIComponent(match[1]!) };
  if (url.pathname === "/" || url.pathname === "") return { origin: url.origin, jobId };
  throw new UsageError(`--url: "${text}" is not a status URL; give http://HOST:PORT/v1/jobs/JOB or http://HOST:PORT`);
}

export async function getStatus(target: StatusTarget, signal: AbortSignal): Promise<StatusReading> {
  const url = `${target.origin}${statusPaths.job(target.jobId)}`;
  const response = await request(url, target, {}, signal);
  const json = (await response.json()) as JsonValue;
  return { status: jobStatusFromJson(json), json };
}

/**
 * Every status change until the job ends. A stream that breaks is opened again: up to
 * `retries` times in a row (with a growing pause), or, given `{ forMs }`, every 250 ms for
 * as long as it has been broken for less than that (a coordinator being started again).
 */
export async function* followStatus(
  target: StatusTarget,
  signal: AbortSignal,
  retries: number | { forMs: number } = 5,
): AsyncGenerator<StatusReading & { id: string }> {
  const url = `${target.origin}${statusPaths.watch(target.jobId)}`;
  let lastId: string | undefined;
  let failures = 0;
  let brokenSince: number | undefined;
  for (;;) {
    try {
      const headers: Record<string, string> = { accept: "text/event-stream", ...(lastId === undefined ? {} : { "last-event-id": lastId }) };
      const response = await request(url, target, headers, signal);
      if (response.body === null) throw new TrainfleetError(Code.UNAVAILABLE, `${url} answered without a body`);
      for await (const event of readServerSentEvents(response.body as unknown as AsyncIterable<Uint8Array>)) {
        if (event.event !== "status") continue;
        failures = 0;
        brokenSince = undefined;
        lastId = event.id;
        const json = JSON.parse(event.data) as JsonValue;
        const status = jobStatusFromJson(json);
        yield { id: event.id, status, json };
        if (isFinished(status.phase)) return;
      }
      throw new TrainfleetError(Code.UNAVAILABLE, `the event stream of ${url} ended before the job did`);
    } catch (error) {
      const failure = translate(error, url, signal);
      if (failure.code !== Code.UNAVAILABLE) throw failure;
      failures++;
      brokenSince ??= Date.now();
      if (typeof retries === "number" ? failures > retries : Date.now() - brokenSince > retries.forMs) throw failure;
      await abortableDelay(typeof retries === "number" ? Math.min(250 * 2 ** failures, 4_000) : 250, signal);
    }
  }
}

async function request(url: string, target: StatusTarget, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
  let response: Response;
  const authorization = target.token === undefined ? {} : { authorization: `Bearer ${target.token.value}` };
  try {
    response = await fetch(url, { headers: { ...headers, ...authorization }, signal });
  } catch (error) {
    throw translate(error, url, signal);
  }
  if (response.ok) return response;
  if (response.status === 401 || response.status === 403) {
    await response.body?.cancel();
    throw refused(response.status, target);
  }
  const text = await response.text().catch(() => "");
  let body: { code?: unknown; message?: unknown } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // not the API's JSON error: reported with the HTTP status below
  }
  const code = response.status === 503 ? Code.UNAVAILABLE : codeFromName(body.code);
  throw new TrainfleetError(
    code,
    typeof body.message === "string" ? body.message : `${url}: HTTP ${response.status} ${text.slice(0, 200)}`,
  );
}

/** A 401 or 403, said in the CLI's terms: which token was sent (never the token) and how to send the right one. */
function refused(status: number, target: StatusTarget): TrainfleetError {
  if (status === 403)
    return new TrainfleetError(
      Code.PERMISSION_DENIED,
      `the coordinator at ${target.origin} does not let the token from ${target.token?.from ?? "nowhere"} read job "${target.jobId}"; ${tokenHelp}`,
    );
  if (target.token === undefined)
    return new TrainfleetError(Code.UNAUTHENTICATED, `the coordinator at ${target.origin} needs the job's read token: ${tokenHelp}`);
  return new TrainfleetError(
    Code.UNAUTHENTICATED,
    `the coordinator at ${target.origin} refused the token from ${target.token.from} (not its read or control token): ${tokenHelp}`,
  );
}

/** fetch's errors as TrainfleetErrors: a connection that fails or drops is UNAVAILABLE. */
function translate(error: unknown, url: string, signal: AbortSignal): TrainfleetError {
  if (error instanceof TrainfleetError) return error;
  if (signal.aborted) return new TrainfleetError(Code.CANCELLED, "stopped", { cause: error });
  const cause = error instanceof Error ? (error.cause as { code?: string; message?: string } | undefined) : undefined;
  const why = cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
  return new TrainfleetError(Code.UNAVAILABLE, `cannot read the coordinator's status API at ${url}: ${why}`, { cause: error });
}
