/**
 * grpc-js service definitions derived from protobuf-es descriptors, so that no wire type
 * or method path is written twice. Handlers are async functions (unary, client
 * streaming) or async generators (server streaming); each gets an AbortSignal that fires
 * when the caller cancels or the server shuts down.
 */

import type { DescMessage, DescMethod, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type * as grpc from "@grpc/grpc-js";
import { Code, TrainfleetError } from "./errors.js";
import { toGrpcStatus } from "./grpc-errors.js";
import type { PeerIdentity } from "./security/peer-identity.js";
import { peerIdentityOf } from "./security/peer-identity.js";

export interface CallContext {
  readonly signal: AbortSignal;
  /** The caller's address, for logs. */
  readonly peer: string;
  /** Whom the caller's certificate names, over mutual TLS; undefined in plaintext. */
  readonly identity: PeerIdentity | undefined;
}

type In<M> = M extends { input: infer I extends DescMessage } ? MessageShape<I> : never;
type OutInit<M> = M extends { output: infer O extends DescMessage } ? MessageInitShape<O> : never;

export type ServiceHandlers<S extends GenServiceMethods> = {
  [K in keyof S]: S[K]["methodKind"] extends "unary"
    ? (request: In<S[K]>, context: CallContext) => Promise<OutInit<S[K]>>
    : S[K]["methodKind"] extends "server_streaming"
      ? (request: In<S[K]>, context: CallContext) => AsyncIterable<OutInit<S[K]>>
      : S[K]["methodKind"] extends "client_streaming"
        ? (requests: AsyncIterable<In<S[K]>>, context: CallContext) => Promise<OutInit<S[K]>>
        : never;
};

export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

export function serializer(schema: DescMessage): (value: object) => Buffer {
  return (value) => {
    const bytes = toBinary(schema, create(schema, value as MessageInitShape<DescMessage>));
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

export function deserializer(schema: DescMessage): (bytes: Buffer) => object {
  return (bytes) => fromBinary(schema, bytes);
}

/**
 * A request body that does not decode. grpc-js answers a deserializer that throws with
 * INTERNAL, which blames the server for the caller's bytes; the server's deserializer returns
 * this instead, and the handler's adapter answers INVALID_ARGUMENT naming the message type.
 */
class UndecodableRequest {
  constructor(readonly error: TrainfleetError) {}
}

function requestDeserializer(schema: DescMessage): (bytes: Buffer) => object {
  return (bytes) => {
    try {
      return fromBinary(schema, bytes);
    } catch (error) {
      return new UndecodableRequest(
        new TrainfleetError(Code.INVALID_ARGUMENT, `the request is not a valid ${schema.typeName}: ${(error as Error).message}`),
      );
    }
  };
}

/** A client stream's messages, ending in the INVALID_ARGUMENT of the first one that does not decode. */
async function* decodedMessages(call: AsyncIterable<object>): AsyncIterable<object> {
  for await (const message of call) {
    if (message instanceof UndecodableRequest) throw message.error;
    yield message;
  }
}

export function grpcServiceDefinition(service: GenService<GenServiceMethods>): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: methodPath(method),
      originalName: method.name,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: serializer(method.input),
      requestDeserialize: requestDeserializer(method.input),
      responseSerialize: serializer(method.output),
      responseDeserialize: deserializer(method.output),
    };
  }
  return definition;
}

/** Adds `service` to a grpc-js server with typed handlers. */
export function addService<S extends GenServiceMethods>(
  server: grpc.Server,
  service: GenService<S>,
  handlers: ServiceHandlers<S>,
  serverSignal: AbortSignal,
): void {
  const implementation: grpc.UntypedServiceImplementation = {};
  const calls = new OpenCalls(serverSignal);
  for (const method of service.methods) {
    const handler = handlers[method.localName as keyof S] as unknown as (...args: unknown[]) => unknown;
    implementation[method.localName] = adapt(method, handler.bind(handlers), calls);
  }
  server.addService(grpcServiceDefinition(service as GenService<GenServiceMethods>), implementation);
}

type AnyCall = grpc.ServerUnaryCall<object, object> & grpc.ServerReadableStream<object, object> & grpc.ServerWritableStream<object, object>;

/**
 * The calls in progress, each cancelled when the server shuts down. A set, not a listener
 * per call on the server's signal: removing an event listener walks the signal's list, so
 * every call paid time linear in the calls open (each member's assignment stream is one).
 */
class OpenCalls {
  readonly #aborts = new Set<() => void>();

  constructor(private readonly serverSignal: AbortSignal) {
    serverSignal.addEventListener("abort", () => {
      for (const abort of this.#aborts) abort();
    });
  }

  /** Calls `abort` when the server shuts down (at once if it has); returns the call's clean-up. */
  add(abort: () => void): () => void {
    if (this.serverSignal.aborted) abort();
    this.#aborts.add(abort);
    return () => this.#aborts.delete(abort);
  }
}

function adapt(method: DescMethod, handler: (...args: unknown[]) => unknown, calls: OpenCalls): grpc.UntypedHandleCall {
  const contextOf = (call: AnyCall): { context: CallContext; done: () => void } => {
    const controller = new AbortController();
    const abort = () => controller.abort(new Error("call cancelled"));
    call.on("cancelled", abort);
    const forget = calls.add(abort);
    return {
      context: { signal: controller.signal, peer: call.getPeer(), identity: peerIdentityOf(call.getAuthContext().sslPeerCertificate) },
      done: () => {
        call.off("cancelled", abort);
        forget();
      },
    };
  };
  switch (method.methodKind) {
    case "unary":
    case "client_streaming":
      return ((call: AnyCall, callback: grpc.sendUnaryData<object>) => {
        if (call.request instanceof UndecodableRequest) return callback(toGrpcStatus(call.request.error));
        const { context, done } = contextOf(call);
        const input = method.methodKind === "unary" ? call.request : decodedMessages(call);
        (handler(input, context) as Promise<object>)
          .then(
            (response) => callback(null, response),
            (error: unknown) => callback(toGrpcStatus(error)),
          )
          .finally(done);
      }) as grpc.UntypedHandleCall;
    case "server_streaming":
      return ((call: AnyCall) => {
        if (call.request instanceof UndecodableRequest) return call.emit("error", toGrpcStatus(call.request.error));
        const { context, done } = contextOf(call);
        void (async () => {
          try {
            for await (const response of handler(call.request, context) as AsyncIterable<object>) {
              if (context.signal.aborted) break;
              if (!call.write(response)) await drainOrAbort(call, context.signal);
            }
            call.end();
          } catch (error) {
            call.emit("error", toGrpcStatus(error));
          } finally {
            done();
          }
        })();
      }) as grpc.UntypedHandleCall;
    default:
      throw new Error(`${methodPath(method)}: ${method.methodKind} methods are not supported`);
  }
}

function drainOrAbort(call: grpc.ServerWritableStream<object, object>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const finish = () => {
      call.off("drain", finish);
      signal.removeEventListener("abort", finish);
      resolve();
    };
    call.on("drain", finish);
    signal.addEventListener("abort", finish);
  });
}
