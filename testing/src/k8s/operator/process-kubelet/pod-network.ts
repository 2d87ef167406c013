/**
 * The network of the process kubelet's one node: every pod runs on this host, so every pod IP
 * (and the node's) is 127.0.0.1, and a port a container listens on is a free port of the host,
 * not the container port (two shards cannot both bind 7100 here).
 */

import { createServer } from "node:net";

/** The IP of every pod, and of the node. */
export const podIP = "127.0.0.1";

/** A port nobody listens on now (the OS picked it for a moment). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, podIP, () => {
      const address = server.address();
      server.close(() => (address !== null && typeof address !== "string" ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** `HOST:PORT`, or undefined for anything else. */
export function splitHostPort(value: string): { host: string; port: number } | undefined {
  const match = /^([^:\s]+):(\d{1,5})$/.exec(value);
  if (match === null) return undefined;
  return { host: match[1]!, port: Number(match[2]) };
}
