/**
 * A client's socket to a shard's data channel, made so that what it reads lands where the
 * frame parser wants it (the socket's `onread` buffer is the place each payload belongs):
 * written there by the kernel in plaintext, by OpenSSL's decryption over mutual TLS.
 */
import type { Socket } from "node:net";
import { connect } from "node:net";
import type { ConnectionOptions } from "node:tls";
import { connect as connectTls } from "node:tls";
import type { ClientSecurity } from "@trainfleet/proto";
import { clientTlsOptions } from "./channel-tls.js";
import type { FrameParser } from "./frame-parser.js";

/** A plaintext connection: the kernel writes each payload where the parser wants it. */
export function connectPlain(host: string, port: number, parser: FrameParser, onError: (error: unknown) => void): Socket {
  return connect({ host, port, noDelay: true, onread: parser.socketReads(onError) });
}

/**
 * A mutual-TLS connection. A socket tls.connect makes itself takes `onread` too: OpenSSL
 * decrypts each record straight into the place the parser chose, so pulled parameters are
 * not copied here either (unlike the shard's side, whose accepted sockets cannot have it).
 */
export function connectSecure(
  host: string,
  port: number,
  parser: FrameParser,
  onError: (error: unknown) => void,
  tls: ClientSecurity,
  address: string,
): Socket {
  // The credentials in use now (renewed ones included: clientTlsOptions reads them per connection).
  // `onread` is a documented option of tls.connect (without `socket`) that @types/node lacks.
  const options = { host, port, ...clientTlsOptions(tls, address), onread: parser.socketReads(onError) };
  const socket = connectTls(options as ConnectionOptions);
  // tls.connect ignores the noDelay option; small frames (headers, acks) must not wait for Nagle.
  socket.setNoDelay(true);
  return socket;
}
