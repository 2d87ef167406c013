/**
 * A gRPC client that puts bytes on the wire exactly as given (its serializer is the
 * identity), so that a fuzz test can send a server any body, including ones no real client
 * library would encode, and see the status and the reply bytes it answers with.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

export interface RawReply {
  /** The gRPC status code (0: OK). */
  code: number;
  details: string;
  /** The reply messages' bytes, undecoded. */
  replies: Uint8Array[];
}

export interface RawGrpcClient {
  unary(path: string, body: Uint8Array, timeoutMs?: number): Promise<RawReply>;
  clientStream(path: string, bodies: readonly Uint8Array[], timeoutMs?: number): Promise<RawReply>;
  /**
   * A server stream's replies up to `maxReplies`: then the call is cancelled and counts as
   * answered (OK), because a stream that is still open has answered with what it sent.
   */
  serverStream(path: string, body: Uint8Array, options: { maxReplies: number; timeoutMs: number }): Promise<RawReply>;
  close(): void;
}

/** The path grpc-js calls `method` by: /package.Service/Method. */
export function rawMethodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

const identity = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const keep = (bytes: Buffer): Uint8Array => new Uint8Array(bytes);

export function createRawGrpcClient(address: string): RawGrpcClient {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const deadline = (timeoutMs: number) => ({ deadline: Date.now() + timeoutMs });
  const settle =
    (resolve: (reply: RawReply) => void) =>
    (error: grpc.ServiceError | null, reply?: Uint8Array): void => {
      if (error !== null) resolve({ code: error.code, details: error.details, replies: [] });
      else resolve({ code: grpc.status.OK, details: "", replies: reply === undefined ? [] : [reply] });
    };
  return {
    unary: (path, body, timeoutMs = 5_000) =>
      new Promise((resolve) => {
        client.makeUnaryRequest(path, identity, keep, body, deadline(timeoutMs), settle(resolve));
      }),
    clientStream: (path, bodies, timeoutMs = 5_000) =>
      new Promise((resolve) => {
        const call = client.makeClientStreamRequest(path, identity, keep, deadline(timeoutMs), settle(resolve));
        for (const body of bodies) call.write(body);
        call.end();
      }),
    serverStream: (path, body, { maxReplies, timeoutMs }) =>
      new Promise((resolve) => {
        const replies: Uint8Array[] = [];
        let answered = false;
        const call = client.makeServerStreamRequest(path, identity, keep, body, new grpc.Metadata(), deadline(timeoutMs));
        call.on("data", (reply: Uint8Array) => {
          replies.push(reply);
          if (replies.length < maxReplies || answered) return;
          answered = true;
          call.cancel();
          resolve({ code: grpc.status.OK, details: `cancelled after ${replies.length} replies`, replies });
        });
        // The status follows every error; the error event itself must have a listener.
        call.on("error", () => {});
        call.on("status", (status: grpc.StatusObject) => {
          if (!answered) resolve({ code: status.code, details: status.details, replies });
        });
      }),
    close: () => client.close(),
  };
}

/**
 * What a server may answer to a body it refuses: a TrainfleetError's code, INVALID_ARGUMENT
 * naming the message type for a body that does not decode. INTERNAL and UNKNOWN are what a
 * handler that threw something else gives (a TypeError on input it did not expect), or
 * grpc-js's own answer to an undecodable body, which blames the server for the caller's bytes.
 */
export function refusedCleanly(reply: RawReply): boolean {
  return reply.code !== grpc.status.OK && reply.code !== grpc.status.INTERNAL && reply.code !== grpc.status.UNKNOWN;
}

/** The answer to a body that does not decode as `typeName`. */
export function refusedAsUndecodable(reply: RawReply, typeName: string): boolean {
  return reply.code === grpc.status.INVALID_ARGUMENT && reply.details.startsWith(`the request is not a valid ${typeName}:`);
}
