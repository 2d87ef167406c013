/**
 * The bit of kube-proxy a Service needs, with every pod on one host: each Service port is a local
 * TCP listener on 127.0.0.1 that forwards each connection to a running pod the Service selects, on
 * the host port of the targetPort. With no such pod yet (a worker that starts before its
 * coordinator) the connection is closed at once, as a Service without endpoints refuses it, and
 * the process retries. Also which addresses name a Service of the namespace.
 */

import type { AddressInfo, Server, Socket } from "node:net";
import { connect, createServer } from "node:net";
import type { V1Service } from "@kubernetes/client-node";
import { podIP, splitHostPort } from "./pod-network.js";
import type { PodProcess } from "./pod-process.js";

/** A Service port as a local TCP listener (kube-proxy): each connection goes to a running pod the Service selects. */
export interface ServiceProxy {
  server: Server;
  port: number;
  sockets: Set<Socket>;
}

/** The Service and port that `NAME[.NS[.svc[.cluster.local]]]:PORT` names in `namespace`, or undefined. */
export function serviceRef(address: string, namespace: string): { name: string; port: number } | undefined {
  const split = splitHostPort(address);
  if (split === undefined) return undefined;
  const [name, ...domain] = split.host.split(".");
  const label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
  if (name === undefined || !label.test(name) || name === "localhost") return undefined;
  const suffixes = [[], [namespace], [namespace, "svc"], [namespace, "svc", "cluster", "local"]].map((parts) => parts.join("."));
  if (!suffixes.includes(domain.join("."))) return undefined;
  return { name, port: split.port };
}

/** Every Service port's forwarder, by `SERVICE:PORT`. */
export class ServiceForwarders {
  readonly #proxies = new Map<string, Promise<ServiceProxy>>();
  /** The forwarders that listen already, by `SERVICE:PORT`. */
  readonly #listening = new Map<string, ServiceProxy>();

  /**
   * @param service the Service of this name as last seen, if any
   * @param processes every pod's process (the endpoints are the running ones the Service selects)
   */
  constructor(
    private readonly service: (name: string) => V1Service | undefined,
    private readonly processes: readonly PodProcess[],
  ) {}

  /** The forwarder of a Service port, made on first use (the Service need not exist yet). */
  forwarder(service: string, port: number): Promise<ServiceProxy> {
    const key = `${service}:${port}`;
    const existing = this.#proxies.get(key);
    if (existing !== undefined) return existing;
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      const target = this.#endpoint(service, port);
      if (target === undefined) {
        socket.destroy();
        return;
      }
      const upstream = connect(target, podIP);
      sockets.add(upstream);
      upstream.on("close", () => sockets.delete(upstream));
      socket.pipe(upstream).pipe(socket);
      socket.on("error", () => upstream.destroy());
      upstream.on("error", () => socket.destroy());
      socket.on("close", () => upstream.destroy());
      upstream.on("close", () => socket.destroy());
    });
    const proxy = new Promise<ServiceProxy>((resolve, reject) => {
      server.on("error", reject);
      server.listen(0, podIP, () => {
        const address = server.address() as AddressInfo;
        const listening = { server, port: address.port, sockets };
        this.#listening.set(key, listening);
        resolve(listening);
      });
    });
    this.#proxies.set(key, proxy);
    return proxy;
  }

  /** The forwarder of a Service port if it listens already. */
  listening(service: string, port: number): ServiceProxy | undefined {
    return this.#listening.get(`${service}:${port}`);
  }

  /** The host port of a ready pod the Service selects, for the Service port `port`. */
  #endpoint(serviceName: string, port: number): number | undefined {
    const service = this.service(serviceName);
    const servicePort = service?.spec?.ports?.find((candidate) => candidate.port === port);
    const selector = service?.spec?.selector;
    if (servicePort === undefined || selector === undefined) return undefined;
    for (const process of this.processes) {
      if (!process.running || process.terminating) continue;
      const labels = process.pod.metadata?.labels ?? {};
      if (!Object.entries(selector).every(([key, value]) => labels[key] === value)) continue;
      const target = servicePort.targetPort ?? port;
      const containerPort =
        typeof target === "number"
          ? target
          : process.pod.spec?.containers[0]?.ports?.find((candidate) => candidate.name === target)?.containerPort;
      const hostPort = containerPort === undefined ? undefined : process.ports.get(containerPort);
      if (hostPort !== undefined) return hostPort;
    }
    return undefined;
  }

  /** Closes every forwarder and the connections through it. */
  async close(): Promise<void> {
    const proxies = await Promise.allSettled(this.#proxies.values());
    await Promise.all(
      proxies
        .flatMap((settled) => (settled.status === "fulfilled" ? [settled.value] : []))
        .map(
          ({ server, sockets }) =>
            new Promise<void>((resolve) => {
              for (const socket of sockets) socket.destroy();
              server.close(() => resolve());
            }),
        ),
    );
  }
}
