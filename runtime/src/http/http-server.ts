/**
 * A node:http server on host:port (port 0 picks a free one) with a graceful close, the
 * HTTP counterpart of grpc-server.ts. A handler that throws gets a 500 with the error's
 * message instead of a hung request. Before any handler runs, a request whose target is
 * not a URL path (`GET http://[`) gets a 400, and one whose Host this server does not
 * answer to (DNS rebinding, allowed-hosts.ts) a 421.
 */

import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "../logger.js";
import { allowedHosts, hostName } from "./allowed-hosts.js";
import { sendError } from "./http-responses.js";

export type HttpHandler = (request: IncomingMessage, response: ServerResponse, serverSignal: AbortSignal) => void | Promise<void>;

export interface RunningHttpServer {
  /** host:port as bound, with the real port when 0 was asked for. */
  readonly address: string;
  readonly port: number;
  /** http://host:port, without a trailing slash. */
  readonly url: string;
  /** Aborted when close() gives up waiting, so that long-lived responses (event streams) end. */
  readonly signal: AbortSignal;
  /** Stops accepting connections, lets open responses finish for up to `graceMs`, then cuts them. */
  close(graceMs?: number): Promise<void>;
}

export interface HttpServerOptions {
  /**
   * Host names (without a port) this server answers to besides IP literals, localhost and
   * Kubernetes Service names (*.svc); the listen host is added when it is a name.
   */
  allowedHosts?: readonly string[];
  /** The process's flag that adds to `allowedHosts`, named when a Host is refused (--allowed-hosts). */
  allowedHostsFlag?: string;
}

/** Why a request is answered before its handler sees it (a target that is no path, a Host not answered to), or undefined. */
function refusal(
  request: IncomingMessage,
  answers: (authority: string) => boolean,
  flag: string | undefined,
): { status: number; code: Code; message: string } | undefined {
  const target = request.url ?? "";
  let url: URL;
  try {
    url = new URL(target, "http://localhost");
  } catch {
    return {
      status: 400,
      code: Code.INVALID_ARGUMENT,
      message: `the request target ${JSON.stringify(target.slice(0, 200))} is not a URL path`,
    };
  }
  if (request.headers.host === undefined)
    return { status: 400, code: Code.INVALID_ARGUMENT, message: "the request has no Host header: send the host:port it was sent to" };
  // An absolute-form target ("GET http://name/path") names the host itself (RFC 9112 3.2.2).
  const authorities = [request.headers.host, target.startsWith("/") ? undefined : url.host];
  for (const authority of authorities) {
    if (authority === undefined || answers(authority)) continue;
    return {
      status: 421,
      code: Code.PERMISSION_DENIED,
      message: `this server does not answer to the Host ${JSON.stringify(authority.slice(0, 200))} (a page that re-pointed its name here?): it answers to IP addresses, localhost, Kubernetes Service names (*.svc) and ${flag === undefined ? "the names it was given" : `the names given with ${flag}`}`,
    };
  }
  return undefined;
}

/** Splits "host:port" (or "[v6]:port"); an empty host means every interface. */
export function splitHostPort(listen: string): { host: string; port: number } {
  const colon = listen.lastIndexOf(":");
  const port = Number(listen.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TrainfleetError(Code.INVALID_ARGUMENT, `"${listen}" is not host:port (port 0 picks a free one)`);
  }
  return { host: listen.slice(0, colon).replace(/^\[(.*)\]$/, "$1"), port };
}

export async function startHttpServer(
  listen: string,
  handler: HttpHandler,
  logger: Logger,
  options: HttpServerOptions = {},
): Promise<RunningHttpServer> {
  const { host, port } = splitHostPort(listen);
  const controller = new AbortController();
  const listenName = host === "" ? undefined : hostName(host);
  const answers = allowedHosts([...(options.allowedHosts ?? []), ...(listenName === undefined ? [] : [listenName])]);
  const flag = options.allowedHostsFlag;
  const server = createServer((request, response) => {
    const refused = refusal(request, answers, flag);
    if (refused !== undefined) return sendError(response, refused.status, refused.code, refused.message);
    Promise.resolve()
      .then(() => handler(request, response, controller.signal))
      .catch((error: unknown) => {
        const failure = TrainfleetError.from(error);
        logger.warn({ method: request.method, url: request.url, err: failure.message }, "HTTP request failed");
        if (!response.headersSent) sendError(response, 500, failure.code, failure.message);
        else response.destroy();
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host === "" ? undefined : host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const urlHost = host === "" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    address: `${host.includes(":") ? `[${host}]` : host}:${bound}`,
    port: bound,
    url: `http://${urlHost}:${bound}`,
    signal: controller.signal,
    close(graceMs = 2_000) {
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          controller.abort(new Error("server closing"));
          server.closeAllConnections();
        }, graceMs);
        // A response that ends while closing (an event stream) leaves a kept-alive idle
        // connection behind, which close() would wait on until the client lets it go.
        const idle = setInterval(() => server.closeIdleConnections(), 50);
        server.close(() => {
          clearTimeout(timer);
          clearInterval(idle);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
