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
 *
 * Every watcher writes the same bytes of a revision (status-encoder.ts): the status is
 * serialised once per change, not once per watcher. A watcher's unsent bytes are bounded:
 * it is written to only once its last event has drained (the socket's high-water mark plus
 * one shared event at most), and one that has not taken its last event within `stallMs` is
 * dropped, so a client that stops reading holds nothing for long.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { keepAliveComment } from "@trainfleet/runtime";
import type { StatusEncoder } from "./status-encoder.js";
import { watchStatus } from "./status-watch.js";

export interface EventStreamOptions {
  keepAliveMs: number;
  /** A watcher that has not taken its last event within this long is dropped. */
  stallMs: number;
  /** Aborted when the server shuts down. */
  serverSignal: AbortSignal;
  /** Told when the stream is cut for not reading. */
  onDropped?: () => void;
}

/** The revision a reconnecting client already has, or undefined (then it gets the current status). */
export function lastEventIdOf(request: IncomingMessage, url: URL): number | undefined {
  const header = request.headers["last-event-id"];
  const text = (Array.isArray(header) ? header[0] : header) ?? url.searchParams.get("lastEventId") ?? "";
  // Ids are the revisions this server sent; anything else is treated as no id at all.
  return /^\d{1,15}$/.test(text.trim()) ? Number(text.trim()) : undefined;
}

export async function streamStatusEvents(
  encoder: StatusEncoder,
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
  // A stream with bytes still waiting is not idle: no comment is queued behind them.
  const keepAlive = setInterval(() => response.writableLength === 0 && response.write(keepAliveComment), options.keepAliveMs);
  let dropped = false;
  try {
    for await (const { revision } of watchStatus(encoder, { lastSeen, signal: controller.signal })) {
      if (controller.signal.aborted) break;
      const encoded = encoder.current();
      // The revision moved on since it was yielded: the watch yields the newer one next.
      if (encoded.revision !== revision) continue;
      if (response.write(encoded.event)) continue;
      if ((await drained(response, controller.signal, options.stallMs)) === "stalled") {
        dropped = true;
        break;
      }
    }
  } finally {
    clearInterval(keepAlive);
    response.off("close", stop);
    options.serverSignal.removeEventListener("abort", stop);
    // A stalled client's queued bytes are thrown away with its socket, not flushed.
    if (dropped) {
      response.destroy();
      options.onDropped?.();
    } else response.end();
  }
}

/** Waits until the response's buffer has drained (the client reads slowly), the stream stops, or `stallMs` passes. */
function drained(response: ServerResponse, signal: AbortSignal, stallMs: number): Promise<"drained" | "stopped" | "stalled"> {
  if (signal.aborted) return Promise.resolve("stopped");
  return new Promise((resolve) => {
    const done = (how: "drained" | "stopped" | "stalled") => {
      clearTimeout(timer);
      response.off("drain", onDrain);
      signal.removeEventListener("abort", onAbort);
      resolve(how);
    };
    const onDrain = () => done("drained");
    const onAbort = () => done("stopped");
    const timer = setTimeout(() => done("stalled"), stallMs);
    response.on("drain", onDrain);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
