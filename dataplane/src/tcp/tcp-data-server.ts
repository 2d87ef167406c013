/**
 * The shard's TCP data channel server: it listens, admits connections and hands each to
 * data-connection.ts. In plaintext the kernel writes a pushed chunk's bytes straight into
 * the rank's contribution buffer (no copy). With the job's credentials it is mutual TLS 1.3:
 * a client without a certificate of the job's CA fails the handshake, and one whose
 * certificate names a role that may not use the data plane (data-plane-access.ts) is told
 * why in an ERROR frame and closed. Each refusal is logged once. Renewed credentials are
 * installed as they come (channel-tls.ts). Connections beyond the limit
 * (data-channel-limits.ts) are told so and closed, logged once per burst.
 */
import { createServer, type Server, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { createServer as createTlsServer } from "node:tls";
import type { TransportSecurity } from "@trainfleet/proto";
import { Code, credentialsNow, peerIdentityOf, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { dataPlaneRefusal } from "../data-plane-access.js";
import type { ShardPort } from "../shard-port.js";
import { serverTlsOptions } from "./channel-tls.js";
import type { DataChannelLimitOptions } from "./data-channel-limits.js";
import { dataChannelLimitFlags, resolveDataChannelLimits } from "./data-channel-limits.js";
import { EncodedParameters, serveConnection } from "./data-connection.js";
import type { FrameParser } from "./frame-parser.js";
import { errorFrame } from "./frame-writer.js";

export interface DataServer {
  readonly address: string;
  /** Connections whose pushed bytes the kernel writes in place (every plaintext one, unless Node hid the socket handle). */
  readonly connectionsReadInPlace: number;
  /** Connections read through 'data' events, one copy per payload: every TLS one (TLS decrypts into its own buffers). */
  readonly connectionsReadByCopy: number;
  /** Connections open now (refused ones not counted). */
  readonly connections: number;
  /** Connections refused because `maxConnections` were open. */
  readonly connectionsRefused: number;
  close(): Promise<void>;
}

/** How long a refused connection may take to read its ERROR frame and hang up before it is cut. */
const refusalLingerMs = 5_000;

/** Serves `shard` on `host` (a free port); with `security`, over mutual TLS with the job's CA; within `limitOptions` (defaults: data-channel-limits.ts). */
export async function startDataServer(
  shard: ShardPort,
  host: string,
  logger: Logger,
  security?: TransportSecurity,
  limitOptions?: DataChannelLimitOptions,
): Promise<DataServer> {
  const limits = resolveDataChannelLimits(limitOptions);
  const sockets = new Set<Socket>();
  /** Refused for the connection limit, lingering until they have read why. */
  const refused = new Set<Socket>();
  const counts = { inPlace: 0, byCopy: 0, refused: 0 };
  let overLimit = false;
  /** True (and the socket told why and closed) when `maxConnections` are open already. */
  const atLimit = (socket: Socket): boolean => {
    if (sockets.size < limits.maxConnections) {
      overLimit = false;
      return false;
    }
    counts.refused++;
    if (!overLimit)
      logger.warn(
        { peer: socket.remoteAddress, maxConnections: limits.maxConnections },
        `data channel connection refused: ${limits.maxConnections} connections open (the shard's ${dataChannelLimitFlags.maxConnections}); further refusals are not logged until one is admitted`,
      );
    overLimit = true;
    refused.add(socket);
    socket.on("close", () => refused.delete(socket));
    socket.on("error", () => {});
    socket.setTimeout(1_000, () => socket.destroy());
    socket.end(
      errorFrame(
        new TrainfleetError(
          Code.RESOURCE_EXHAUSTED,
          `this shard holds ${limits.maxConnections} data channel connections already; close some, or raise the shard's ${dataChannelLimitFlags.maxConnections}`,
        ),
      ),
    );
    return true;
  };
  const closing = new AbortController();
  // Shared by every connection: each chunk of each version is encoded once, whoever pulls it.
  const encoded = new EncodedParameters();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  };
  let server: Server;
  if (security === undefined) {
    // Paused, so that no byte is read before the connection is moved to a socket that reads in place.
    server = createServer({ pauseOnConnect: true }, (accepted) => {
      if (atLimit(accepted)) return;
      const socket = serveConnection(shard, logger, {
        closing: closing.signal,
        encoded,
        limits,
        tls: false,
        attach: (parser, onError) => {
          const reader = readInPlace(accepted, parser, onError);
          counts[reader.inPlace ? "inPlace" : "byCopy"]++;
          return reader.socket;
        },
      });
      track(socket);
    });
  } else {
    const jobId = security.identity.jobId;
    // The handshake is part of saying HELLO: a client that stalls in it is cut at the same time.
    const tlsServer = createTlsServer(
      { ...serverTlsOptions(credentialsNow(security)), handshakeTimeout: limits.helloTimeoutMs },
      (socket: TLSSocket) => {
        if (atLimit(socket)) return;
        track(socket);
        const identity = peerIdentityOf(socket.getPeerCertificate());
        const refused = dataPlaneRefusal(identity, jobId, "connect");
        if (refused !== undefined) return refuse(socket, refused, logger);
        serveConnection(shard, logger, {
          closing: closing.signal,
          encoded,
          limits,
          peer: identity,
          pushRefusal: dataPlaneRefusal(identity, jobId, "push"),
          tls: true,
          attach: (parser, onError) => {
            counts.byCopy++;
            return readByCopy(socket, parser, onError);
          },
        });
      },
    );
    // Renewed credentials: the next handshake presents the new certificate and trusts the new CA bundle.
    const stopUpdates = security.updates?.subscribe((next) => tlsServer.setSecureContext(serverTlsOptions(next)));
    if (stopUpdates !== undefined) closing.signal.addEventListener("abort", stopUpdates, { once: true });
    // A client the CA did not issue (or no TLS at all) never gets a connection: one line each.
    tlsServer.on("tlsClientError", (error, socket) =>
      logger.warn({ peer: socket.remoteAddress, err: error.message }, "data channel connection refused: TLS handshake failed"),
    );
    server = tlsServer;
  }
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, host, () => resolve());
    });
  } catch (error) {
    closing.abort();
    throw error;
  }
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    address: `${host}:${port}`,
    get connectionsReadInPlace() {
      return counts.inPlace;
    },
    get connectionsReadByCopy() {
      return counts.byCopy;
    },
    get connections() {
      return sockets.size;
    },
    get connectionsRefused() {
      return counts.refused;
    },
    close: () =>
      new Promise<void>((resolve) => {
        closing.abort();
        for (const socket of [...sockets, ...refused]) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Tells a connected peer why it is refused and hangs up. What it sent is read and dropped
 * (closing with unread bytes would reset the connection before it reads the reason).
 */
function refuse(socket: TLSSocket, reason: TrainfleetError, logger: Logger): void {
  logger.warn({ peer: socket.remoteAddress, err: reason.message }, "data channel connection refused");
  socket.on("data", () => {});
  socket.on("error", () => {});
  socket.setTimeout(refusalLingerMs, () => socket.destroy());
  socket.end(errorFrame(reason));
}

/** Reads through 'data' events: each chunk is copied into the place the parser chose. */
function readByCopy(socket: Socket, parser: FrameParser, onError: (error: unknown) => void): Socket {
  socket.on("data", (chunk: Buffer) => {
    try {
      parser.feed(chunk);
    } catch (error) {
      onError(error);
    }
  });
  socket.resume();
  return socket;
}

/**
 * An accepted socket cannot take `onread` (only sockets built with it can), so its handle
 * moves into a new Socket that has it: the kernel then reads each payload into the place
 * the parser chose. `_handle` is internal to Node; where it is missing this falls back to
 * 'data' events and one copy, and the data-channel tests check which path ran.
 */
function readInPlace(accepted: Socket, parser: FrameParser, onError: (error: unknown) => void): { socket: Socket; inPlace: boolean } {
  const holder = accepted as unknown as { _handle: object | null };
  const handle = holder._handle;
  if (handle === null || handle === undefined) return { socket: readByCopy(accepted, parser, onError), inPlace: false };
  holder._handle = null;
  const socket = new Socket({
    handle,
    onread: parser.socketReads(onError),
  } as ConstructorParameters<typeof Socket>[0]);
  // The emptied original only settles the server's connection count; the descriptor lives on in `socket`.
  accepted.destroy();
  return { socket, inPlace: true };
}
