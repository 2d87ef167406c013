/**
 * GET /v1/jobs/{id}/watch: the job's status as server-sent events. Each event is
 *
 *   id: <status revision>
 *   event: status
 *   data: <the JobStatus as one line of proto JSON>
 *
 * from watchStatus (the same updates as gRPC WatchJob). A client that reconnects with
 * `Last-Event-ID` (browsers do it by themselves; `?lastEventId=` works too) gets the
 * current status at once only if it changed since that id, else the next change. The
 * stream ends after the final status. Headers are flushed at once, a comment line goes out
 * every `keepAliveMs` while nothing changes, and a client that reads slowly gets the newest
 * status when it is ready instead of a backlog.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { jobStatusToJson } from "@trainfleet/proto";
import { formatServerSentEvent, keepAliveComment } from "@trainfleet/runtime";
import type { StatusSource } from "./status-watch.js";
import { watchStatus } from "./status-watch.js";

export interface EventStreamOptions {
  keepAliveMs: number;
  /** Aborted when the server shuts down. */
  serverSignal: AbortSignal;
}

/** The revision a reconnecting client already has, or undefined (then it gets the current status). */
export function lastEventIdOf(request: IncomingMessage, url: URL): number | undefined {
  const header = request.headers["last-event-id"];
  const text = (Array.isArray(header) ? header[0] : header) ?? url.searchParams.get("lastEventId") ?? "";
  // Ids are the revisions this server sent; anything else is treated as no id at all.
  return /^\d{1,15}$/.test(text.trim()) ? Number(text.trim()) : undefined;
}

export async function streamStatusEvents(
  source: StatusSource,
  response: ServerResponse,
  lastSeen: number | undefined,
  options: EventStreamOptions,
): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  // "close" comes when the client goes away (or the response has ended).
  response.on("close", stop);
  options.serverSignal.addEventListener("abort", stop, { once: true });
  response.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-store",
    connection: "keep-alive",
    // Proxies such as nginx buffer responses unless told not to.
    "x-accel-buffering": "no",
  });
  response.flushHeaders();
  const keepAlive = setInterval(() => response.write(keepAliveComment), options.keepAliveMs);
  try {
    for await (const { revision, status } of watchStatus(source, { lastSeen, signal: controller.signal })) {
      if (controller.signal.aborted) break;
      const event = formatServerSentEvent({ id: String(revision), event: "status", data: JSON.stringify(jobStatusToJson(status)) });
      if (!response.write(event)) await drained(response, controller.signal);
    }
  } finally {
    clearInterval(keepAlive);
    response.off("close", stop);
    options.serverSignal.removeEventListener("abort", stop);
    response.end();
  }
}

/** Waits until the response's buffer has drained (the client reads slowly), or the stream stops. */
function drained(response: ServerResponse, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      response.off("drain", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    response.on("drain", done);
    signal.addEventListener("abort", done, { once: true });
  });
}
