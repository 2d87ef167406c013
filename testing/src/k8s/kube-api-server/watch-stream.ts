/**
 * Watches as the real server streams them: HTTP 200 with headers flushed at once, then one JSON
 * event per line ({type, object}). A watch from resourceVersion N replays the kept changes after
 * N, then follows new ones; "" or "0" starts with an ADDED for every current object. A watch
 * from before the kept history gets an ERROR event carrying a 410 Expired Status and ends: what
 * client-node's informer answers with a re-list. With a selector, an object that stops (starts)
 * matching is seen as DELETED (ADDED), as in the real watch cache.
 */
import type { ServerResponse } from "node:http";
import type { JsonObject } from "../../manifests.js";
import { badRequest, expired } from "./api-status.js";
import type { Change } from "./change-log.js";
import { namespaceOf } from "./object-meta.js";
import type { ObjectStore } from "./object-store.js";
import type { ResourceDefinition } from "./resource-table.js";
import { apiVersionOf, resourceKey } from "./resource-table.js";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface WatchRequest {
  resource: ResourceDefinition;
  /** "" watches every namespace. */
  namespace: string;
  query: URLSearchParams;
  matches: (object: JsonObject) => boolean;
}

export interface OpenWatches {
  /** Starts streaming `request` on `response` (which must not have been written to). */
  serve(request: WatchRequest, response: ServerResponse): void;
  /** Cuts every watch's connection without ending the stream, as a crashed server or a network failure does. */
  drop(): number;
  /** Ends every watch cleanly, as the real server does when a watch's timeout runs out. */
  end(): number;
  /** Sends a BOOKMARK with the current resourceVersion to the watches that allow bookmarks. */
  bookmark(): void;
  count(): number;
}

interface OpenWatch {
  response: ServerResponse;
  bookmarks: boolean;
  resource: ResourceDefinition;
  stop(): void;
}

function parseResourceVersion(text: string | null): number | "any" {
  if (text === null || text === "" || text === "0") return "any";
  if (!/^[0-9]+$/.test(text)) throw badRequest(`resourceVersion: Invalid value: "${text}": must be a non-negative integer`);
  return Number(text);
}

/** What a watcher with this selector sees of a change, if anything. */
function eventFor(change: Change, matches: (object: JsonObject) => boolean): "ADDED" | "MODIFIED" | "DELETED" | undefined {
  const now = change.type !== "DELETED" && matches(change.object);
  const before = change.previous !== undefined && matches(change.previous);
  if (change.type === "DELETED") return before ? "DELETED" : undefined;
  if (now) return before ? "MODIFIED" : "ADDED";
  return before ? "DELETED" : undefined;
}

export function createOpenWatches(store: ObjectStore): OpenWatches {
  const open = new Set<OpenWatch>();
  const send = (response: ServerResponse, type: WatchEventType, object: JsonObject) =>
    response.write(`${JSON.stringify({ type, object })}\n`);

  return {
    serve(request, response) {
      const from = parseResourceVersion(request.query.get("resourceVersion"));
      const key = resourceKey(request.resource);
      const inScope = (change: Change) =>
        change.resourceKey === key && (request.namespace === "" || namespaceOf(change.object) === request.namespace);
      response.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked", "Cache-Control": "no-cache, private" });
      response.flushHeaders();

      const history = from === "any" ? [] : store.changes.since(from);
      if (history === "expired") {
        send(response, "ERROR", expired(String(from), String(store.changes.compactedThrough() + 1)).status());
        response.end();
        return;
      }
      const deliver = (change: Change) => {
        if (!inScope(change)) return;
        const type = eventFor(change, request.matches);
        if (type !== undefined) send(response, type, change.object);
      };
      if (from === "any") {
        for (const object of store.list(key, request.namespace === "" ? undefined : request.namespace))
          if (request.matches(object)) send(response, "ADDED", object);
      } else history.forEach(deliver);
      const unsubscribe = store.changes.subscribe(deliver);

      const timeoutSeconds = Number(request.query.get("timeoutSeconds") ?? "0");
      const timer = timeoutSeconds > 0 ? setTimeout(() => response.end(), timeoutSeconds * 1000) : undefined;
      const watch: OpenWatch = {
        response,
        bookmarks: request.query.get("allowWatchBookmarks") === "true",
        resource: request.resource,
        stop: () => {
          unsubscribe();
          clearTimeout(timer);
          open.delete(watch);
        },
      };
      open.add(watch);
      response.once("close", watch.stop);
    },
    drop() {
      const dropped = [...open];
      for (const watch of dropped) {
        watch.stop();
        watch.response.socket?.destroy();
      }
      return dropped.length;
    },
    end() {
      const ended = [...open];
      for (const watch of ended) {
        watch.stop();
        watch.response.end();
      }
      return ended.length;
    },
    bookmark() {
      const resourceVersion = String(store.resourceVersion());
      for (const watch of open) {
        if (watch.bookmarks)
          send(watch.response, "BOOKMARK", {
            kind: watch.resource.kind,
            apiVersion: apiVersionOf(watch.resource),
            metadata: { resourceVersion },
          });
      }
    },
    count: () => open.size,
  };
}
