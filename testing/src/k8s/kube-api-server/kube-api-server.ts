/**
 * The in-process Kubernetes API server the operator is tested against (no real kube-apiserver
 * can run here): real HTTP on 127.0.0.1 and a port of its own, the REST and watch wire protocol
 * that client-node speaks, and the hooks a test needs to make it misbehave (injected errors,
 * dropped watches, compacted history) and to see what was asked of it (the request log).
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { KubeConfig } from "@kubernetes/client-node";
import type { JsonObject } from "../../manifests.js";
import type { AddedAdmissionCheck, AdmissionCheck } from "./admission.js";
import { createAdmission } from "./admission.js";
import { ApiStatusError, methodNotAllowed } from "./api-status.js";
import { discoveryDocument } from "./discovery.js";
import type { Fault, FaultMatch, InjectedFault } from "./fault-injector.js";
import { createFaultInjector } from "./fault-injector.js";
import { startGarbageCollector } from "./garbage-collector.js";
import { kubeConfigFor } from "./kube-config.js";
import type { Reply } from "./object-handlers.js";
import { createObjectHandlers, selectorsOf } from "./object-handlers.js";
import { createObjectStore } from "./object-store.js";
import type { RequestLog, RequestRecord } from "./request-log.js";
import { createRequestLog } from "./request-log.js";
import { routeOf } from "./request-route.js";
import type { ResourceDefinition } from "./resource-table.js";
import { createResourceTable, defaultResources, resourceKey } from "./resource-table.js";
import { createOpenWatches } from "./watch-stream.js";
import { createObjectWriter } from "./writes.js";

export interface KubeApiServerOptions {
  /** What to serve (default: pods, services, events, configmaps and trainingjobs). */
  resources?: readonly ResourceDefinition[];
  /** How many changes a watch can be replayed from (default 1000); older ones get 410. */
  historyLimit?: number;
  /** The clock for creationTimestamp and deletionTimestamp (default: the real one). */
  now?: () => Date;
}

export interface KubeApiServer {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** A client-node KubeConfig pointing at this server, with `namespace` as the context's. */
  kubeConfig(namespace?: string, user?: string): KubeConfig;
  readonly requests: RequestLog;
  /** Answers the next matching requests with an HTTP error instead of serving them. */
  failNext(match: FaultMatch, fault: Fault): InjectedFault;
  /**
   * Runs `check` on every create from now on, before the object is stored: a refusal it returns
   * (admission.ts builds them as the real server words them) is the answer, as an admission
   * webhook, Pod Security or a ResourceQuota would refuse the object.
   */
  addAdmissionCheck(check: AdmissionCheck): AddedAdmissionCheck;
  /** Cuts every open watch's connection (as a crash or network failure would); returns how many. */
  dropWatches(): number;
  /** Ends every open watch cleanly (as a watch timeout does); returns how many. */
  endWatches(): number;
  /** Forgets the change history: a watch from any resourceVersion before now gets 410 Expired. */
  compact(): void;
  /** Sends a BOOKMARK to every watch that allows them. */
  bookmark(): void;
  openWatches(): number;
  /** The newest resourceVersion (what a list would report). */
  resourceVersion(): string;
  /** Resolves once the garbage collector has nothing left to do. */
  garbageCollected(): Promise<void>;
  /** The stored object, read directly (not through HTTP, not logged). */
  object(resource: ResourceDefinition, namespace: string, name: string): JsonObject | undefined;
  close(): Promise<void>;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function reply(response: ServerResponse, { code, body }: Reply, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text), ...headers });
  response.end(text);
}

export async function startKubeApiServer(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const table = createResourceTable(options.resources ?? defaultResources);
  const now = options.now ?? (() => new Date());
  // Real resourceVersions are large opaque numbers; starting past 1 keeps tests from assuming otherwise.
  const store = createObjectStore({ historyLimit: options.historyLimit ?? 1000, firstResourceVersion: 1000 });
  const writer = createObjectWriter(store, table, now);
  const collector = startGarbageCollector(store, table, writer);
  const admission = createAdmission();
  const handle = createObjectHandlers({ store, writer, now, admission });
  const watches = createOpenWatches(store);
  const faults = createFaultInjector();
  const requests = createRequestLog();
  let address = "127.0.0.1:0";

  const serve = async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? "/", "http://127.0.0.1");
    const method = request.method ?? "GET";
    const contentType = request.headers["content-type"];
    const record: RequestRecord = {
      method,
      path: url.pathname,
      query: url.search.replace(/^\?/, ""),
      contentType,
      status: 0,
      injected: false,
    };
    // Who asked, as an audit log's user.username: the bearer token names the user (nothing is authenticated).
    const token = /^Bearer (.+)$/.exec(request.headers.authorization ?? "")?.[1];
    if (token !== undefined) record.user = token;
    try {
      const body = await readBody(request);
      const route = routeOf(method, url.pathname, url.searchParams, table);
      if (route.kind === "discovery") {
        if (method !== "GET") throw methodNotAllowed(method);
        reply(response, { code: 200, body: discoveryDocument(route.segments, table, address) });
      } else {
        Object.assign(record, { verb: route.verb, apiGroup: route.resource.group, resource: route.resource.plural });
        if (route.subresource !== undefined) record.subresource = route.subresource;
        if (route.namespace !== "") record.namespace = route.namespace;
        if (route.name !== undefined) record.name = route.name;
        const fault = faults.take(route);
        if (fault !== undefined) {
          record.injected = true;
          throw fault;
        }
        if (route.verb === "watch")
          watches.serve(
            {
              resource: route.resource,
              namespace: route.namespace,
              query: url.searchParams,
              matches: selectorsOf(route.resource, url.searchParams),
            },
            response,
          );
        else reply(response, handle({ route, query: url.searchParams, contentType, body }));
      }
    } catch (caught) {
      // A failure after a watch's headers went out can only cut the stream.
      if (response.headersSent) {
        response.destroy();
        return;
      }
      const error = ApiStatusError.from(caught);
      const retryAfter = error.details?.retryAfterSeconds;
      reply(response, { code: error.code, body: error.status() }, retryAfter === undefined ? {} : { "Retry-After": String(retryAfter) });
    }
    record.status = response.statusCode;
    requests.record(record);
  };

  const server = createServer((request, response) => void serve(request, response));
  server.listen(0, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const port = (server.address() as AddressInfo).port;
  address = `127.0.0.1:${port}`;
  const url = `http://${address}`;

  return {
    url,
    kubeConfig: (namespace, user) => kubeConfigFor(url, namespace, user),
    requests,
    failNext: (match, fault) => faults.failNext(match, fault),
    addAdmissionCheck: (check) => admission.add(check),
    dropWatches: () => watches.drop(),
    endWatches: () => watches.end(),
    compact: () => store.changes.compact(store.resourceVersion()),
    bookmark: () => watches.bookmark(),
    openWatches: () => watches.count(),
    resourceVersion: () => String(store.resourceVersion()),
    garbageCollected: () => collector.settled(),
    object: (resource, namespace, name) => store.get(resourceKey(resource), namespace, name),
    async close() {
      collector.close();
      watches.drop();
      const closed = new Promise<void>((resolve, reject) => server.close((error) => (error === undefined ? resolve() : reject(error))));
      server.closeAllConnections();
      await closed;
    },
  };
}
