/** A grpc-js server on host:port (port 0 picks a free one) with a graceful close. */
import * as grpc from "@grpc/grpc-js";
import { channelOptions } from "./limits.js";
import { serverCredentials } from "./security/grpc-credentials.js";
import type { TransportSecurity } from "./security/transport-security.js";

export interface RunningServer {
  /** host:port that clients dial, with the real port when 0 was asked for. */
  readonly address: string;
  readonly port: number;
  /** Aborted when close() gives up waiting, so that long-lived calls (streams, long polls) end. */
  readonly signal: AbortSignal;
  /** Stops accepting calls, lets open ones finish for up to `graceMs`, then cancels them. */
  close(graceMs?: number): Promise<void>;
}

/**
 * With `security`, mutual TLS: only clients whose certificate the job's CA issued get a
 * connection, and each call sees its peer's identity (CallContext.identity) for the
 * service to check the role it needs. Credentials that `security` switches to later are
 * presented from the next handshake on (grpc-credentials.ts). Without it, plaintext.
 */
export async function startServer(
  listen: string,
  register: (server: grpc.Server, signal: AbortSignal) => void,
  security?: TransportSecurity,
): Promise<RunningServer> {
  const server = new grpc.Server(channelOptions);
  const controller = new AbortController();
  register(server, controller.signal);
  const port = await new Promise<number>((resolve, reject) => {
    const credentials = security === undefined ? grpc.ServerCredentials.createInsecure() : serverCredentials(security);
    server.bindAsync(listen, credentials, (error, boundPort) => (error ? reject(error) : resolve(boundPort)));
  });
  const host = listen.slice(0, listen.lastIndexOf(":"));
  let closing: Promise<void> | undefined;
  return {
    address: `${host}:${port}`,
    port,
    signal: controller.signal,
    close(graceMs = 2_000) {
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          controller.abort(new Error("server closing"));
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return closing;
    },
  };
}
