/**
 * Typed grpc-js clients from protobuf-es service descriptors: unary calls return
 * promises, server streams are async iterables, client streams take an iterable of
 * messages. Every call takes an optional AbortSignal and deadline; errors arrive as
 * TrainfleetError (see grpc-errors.ts).
 */
import { once } from "node:events";
import type { DescMessage, DescMethod, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import * as grpc from "@grpc/grpc-js";
import { fromGrpcError } from "./grpc-errors.js";
import { deserializer, methodPath, serializer } from "./grpc-service.js";
import { channelOptions } from "./limits.js";
import { channelCredentials } from "./security/grpc-credentials.js";
import type { ExpectedPeer } from "./security/peer-identity.js";
import { peerIdentityOf, peerMismatch } from "./security/peer-identity.js";
import type { TransportSecurity } from "./security/transport-security.js";

export interface CallOptions {
  signal?: AbortSignal | undefined;
  /** Milliseconds from now. */
  timeoutMs?: number | undefined;
}

type OutShape<M> = M extends { output: infer O extends DescMessage } ? MessageShape<O> : never;
type InInit<M> = M extends { input: infer I extends DescMessage } ? MessageInitShape<I> : never;

export type ServiceClient<S extends GenServiceMethods> = {
  [K in keyof S]: S[K]["methodKind"] extends "unary"
    ? (request: InInit<S[K]>, options?: CallOptions) => Promise<OutShape<S[K]>>
    : S[K]["methodKind"] extends "server_streaming"
      ? (request: InInit<S[K]>, options?: CallOptions) => AsyncIterable<OutShape<S[K]>>
      : S[K]["methodKind"] extends "client_streaming"
        ? (requests: AsyncIterable<InInit<S[K]>> | Iterable<InInit<S[K]>>, options?: CallOptions) => Promise<OutShape<S[K]>>
        : never;
} & { close(): void };

/** The client type of a generated service constant: `ClientOf<typeof FooService>`. */
export type ClientOf<T> = T extends GenService<infer S> ? ServiceClient<S> : never;

export interface ClientSecurity {
  security: TransportSecurity;
  /** Whom the server's certificate must name (its job, by default this process's). */
  server: ExpectedPeer;
}

/**
 * A client of `service` at `address`: plaintext, or with `tls` mutual TLS in which the
 * server must show a certificate of this job's CA that names the peer expected. The
 * address is not what is checked (pods come and go by IP): the certificate's identity is.
 * Each connection the client makes (the first, and any after one drops) presents the
 * credentials `tls.security` holds at that moment (grpc-credentials.ts).
 */
export function createClient<S extends GenServiceMethods>(service: GenService<S>, address: string, tls?: ClientSecurity): ServiceClient<S> {
  // Over TLS the name sent (SNI) is not an address: the identity in the certificate is what is
  // checked, and Node warns when an IP address is sent as a server name.
  const options = tls === undefined ? channelOptions : { ...channelOptions, "grpc.ssl_target_name_override": "trainfleet" };
  const client = new grpc.Client(address, clientCredentials(tls), options);
  const methods: Record<string, unknown> = { close: () => client.close() };
  for (const method of service.methods) methods[method.localName] = bind(client, method);
  return methods as ServiceClient<S>;
}

function clientCredentials(tls: ClientSecurity | undefined): grpc.ChannelCredentials {
  if (tls === undefined) return grpc.credentials.createInsecure();
  const { security, server } = tls;
  const expected = { jobId: security.identity.jobId, ...server };
  return channelCredentials(security, (_host, certificate) => {
    const problem = peerMismatch(peerIdentityOf(certificate), expected);
    return problem === undefined ? undefined : new Error(`the server is not who this client expects: ${problem}`);
  });
}

function callOptions(options: CallOptions | undefined): grpc.CallOptions {
  return options?.timeoutMs === undefined ? {} : { deadline: Date.now() + options.timeoutMs };
}

/** Cancels `call` when `signal` aborts; returns the clean-up. */
function linkSignal(call: grpc.Call, signal: AbortSignal | undefined): () => void {
  if (signal === undefined) return () => {};
  const cancel = () => call.cancel();
  if (signal.aborted) cancel();
  signal.addEventListener("abort", cancel);
  return () => signal.removeEventListener("abort", cancel);
}

function bind(client: grpc.Client, method: DescMethod): unknown {
  const path = methodPath(method);
  const serialize = serializer(method.input);
  const deserialize = deserializer(method.output);
  switch (method.methodKind) {
    case "unary":
      return (request: object, options?: CallOptions) =>
        new Promise((resolve, reject) => {
          const call = client.makeUnaryRequest(path, serialize, deserialize, request, callOptions(options), (error, response) => {
            unlink();
            if (error) reject(fromGrpcError(error));
            else resolve(response);
          });
          const unlink = linkSignal(call, options?.signal);
        });
    case "server_streaming":
      return (request: object, options?: CallOptions) => ({
        async *[Symbol.asyncIterator]() {
          const call = client.makeServerStreamRequest(path, serialize, deserialize, request, callOptions(options));
          const unlink = linkSignal(call, options?.signal);
          try {
            for await (const response of call) yield response;
          } catch (error) {
            throw fromGrpcError(error);
          } finally {
            unlink();
            call.cancel();
          }
        },
      });
    case "client_streaming":
      return (requests: AsyncIterable<object> | Iterable<object>, options?: CallOptions) =>
        new Promise((resolve, reject) => {
          const call = client.makeClientStreamRequest(path, serialize, deserialize, callOptions(options), (error, response) => {
            unlink();
            if (error) reject(fromGrpcError(error));
            else resolve(response);
          });
          const unlink = linkSignal(call, options?.signal);
          void (async () => {
            try {
              for await (const request of requests) {
                if (!call.write(request)) await once(call, "drain");
              }
              call.end();
            } catch (error) {
              call.cancel();
              reject(fromGrpcError(error));
            }
          })();
        });
    default:
      throw new Error(`${path}: ${method.methodKind} methods are not supported`);
  }
}
