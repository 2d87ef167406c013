/**
 * A client of every parameter-server shard of a job: pushes a whole gradient and pulls
 * the whole parameter vector, each shard's part in parallel and in chunks, over the TCP
 * data channel or the gRPC service. Used by workers, by the coordinator (final
 * parameters) and by benchmarks.
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { CallOptions, ClientOf, ClientSecurity, PushRequestSchema, ShardRangeSchema, TransportSecurity } from "@trainfleet/proto";
import { Code, createClient, DataPlane, ParameterServerService, TrainfleetError, WireDtype } from "@trainfleet/proto";
import type { Range } from "@trainfleet/spec";
import { chunkRanges } from "@trainfleet/spec";
import { decodeFloat32Into, float32Bytes } from "./codec/tensor-codec.js";
import { shardPeer } from "./data-plane-access.js";
import type { PushTag, ShardLink } from "./shard-link.js";
import { ShardConnection } from "./tcp/shard-connection.js";

export interface ShardEndpoint extends Range {
  index: number;
  address: string;
  /** The shard's TCP data channel; the gRPC service is used where it is absent. */
  dataAddress?: string | undefined;
}

/** A shard's place in the plan (a ShardRange message, or its init shape) as a client needs it. */
export function shardEndpoint(range: MessageInitShape<typeof ShardRangeSchema>): ShardEndpoint {
  return {
    index: range.index ?? 0,
    address: range.address ?? "",
    dataAddress: range.dataAddress,
    begin: Number(range.begin ?? 0),
    end: Number(range.end ?? 0),
  };
}

export interface ParameterClient {
  /** Fills `into` (the whole vector) with version >= minVersion of every shard; returns the version. */
  pull(minVersion: number, into: Float32Array, options?: CallOptions): Promise<number>;
  /** Sends `gradient` (the whole vector) to the shards, each its own range. */
  push(tag: PushTag, gradient: Float32Array, options?: CallOptions): Promise<void>;
  /**
   * push, and the pull of the version it leads to, sent back to back without waiting for
   * the push's ack: one round trip less per step. Returns the version pulled.
   */
  pushThenPull(tag: PushTag, gradient: Float32Array, into: Float32Array, options?: CallOptions): Promise<number>;
  /** Async mode: each shard's newest version (>= minVersion) into `into`, and those versions by shard (in async, shards need not agree). */
  pullEach(minVersion: number, into: Float32Array, options?: CallOptions): Promise<number[]>;
  /**
   * Async mode: pushes `gradient` with each shard's part tagged with the version it was
   * computed from, `steps[i]` for shard i (undefined: not to that shard). Resolves with each
   * shard's failure, undefined where it took its part: shards apply independently.
   */
  pushEach(
    tag: Omit<PushTag, "step">,
    steps: ReadonlyArray<number | undefined>,
    gradient: Float32Array,
    options?: CallOptions,
  ): Promise<Array<TrainfleetError | undefined>>;
  close(): void;
}

export interface ParameterClientOptions {
  jobId: string;
  shards: readonly ShardEndpoint[];
  chunkBytes: number;
  /** TCP uses every shard's data channel; gRPC (the default) the gRPC service. */
  dataPlane?: DataPlane;
  /** Shards in this very process (colocated placement), by index, reached through memory. */
  local?: ReadonlyMap<number, ShardLink>;
  /** The number format on the TCP channel; float32 by default. */
  wireDtype?: WireDtype;
  /**
   * Mutual TLS with the job's credentials, on both data planes: each shard must show a
   * certificate of this job naming it (parameter-server ps-{index}). Plaintext when absent.
   */
  security?: TransportSecurity | undefined;
}

export function createParameterClient(options: ParameterClientOptions): ParameterClient {
  const {
    jobId,
    shards,
    chunkBytes,
    dataPlane = DataPlane.GRPC,
    local = new Map<number, ShardLink>(),
    wireDtype = WireDtype.FLOAT32,
    security,
  } = options;
  const tls = (shard: ShardEndpoint): ClientSecurity | undefined =>
    security === undefined ? undefined : { security, server: shardPeer(shard.index) };
  const useTcp = dataPlane !== DataPlane.GRPC && shards.every((shard) => shard.dataAddress || local.has(shard.index));
  return useTcp
    ? createLinkedParameterClient(jobId, shards, chunkBytes, local, wireDtype, tls)
    : createGrpcParameterClient(jobId, shards, chunkBytes, tls);
}

function createLinkedParameterClient(
  jobId: string,
  shards: readonly ShardEndpoint[],
  chunkBytes: number,
  local: ReadonlyMap<number, ShardLink>,
  wireDtype: WireDtype,
  tls: (shard: ShardEndpoint) => ClientSecurity | undefined,
): ParameterClient {
  const chunkElements = Math.max(1, Math.floor(chunkBytes / 4));
  const connections = shards.map((shard) => ({
    shard,
    chunks: chunkRanges(shard, chunkElements),
    connection: local.get(shard.index) ?? new ShardConnection(shard.dataAddress!, jobId, shard, wireDtype, tls(shard)),
  }));
  const client: ParameterClient = {
    async pull(minVersion, into, options) {
      return sameVersion(await client.pullEach(minVersion, into, options), minVersion);
    },
    async pullEach(minVersion, into, options) {
      const signal = callSignal(options);
      return Promise.all(connections.map(({ connection }) => connection.pull(minVersion, into, signal)));
    },
    async push(tag, gradient, options) {
      const signal = callSignal(options);
      await Promise.all(connections.map(({ connection, chunks }) => connection.push(tag, gradient, chunks, signal)));
    },
    pushEach(tag, steps, gradient, options) {
      const signal = callSignal(options);
      return eachShard(connections, steps, ({ connection, chunks }, step) => connection.push({ ...tag, step }, gradient, chunks, signal));
    },
    async pushThenPull(tag, gradient, into, options) {
      // A failure on one shard cancels the others: their versions could not all come.
      const failed = new AbortController();
      const signal = AbortSignal.any([callSignal(options), failed.signal].filter((s) => s !== undefined));
      const versions = await Promise.all(
        connections.map(({ connection, chunks }) =>
          connection.pushThenPull(tag, gradient, chunks, into, signal).catch((error: unknown) => {
            failed.abort(error);
            throw error;
          }),
        ),
      );
      return sameVersion(versions, tag.step + 1);
    },
    close() {
      for (const { connection } of connections) connection.close();
    },
  };
  return client;
}

/** pushThenPull for any client: the pull is cancelled if the push fails, since its version would never come. */
function pushThenPull(client: Pick<ParameterClient, "push" | "pull">): ParameterClient["pushThenPull"] {
  return async (tag, gradient, into, options) => {
    const pull = new AbortController();
    const signal = options?.signal === undefined ? pull.signal : AbortSignal.any([options.signal, pull.signal]);
    const [, version] = await Promise.all([
      client.push(tag, gradient, options).catch((error: unknown) => {
        pull.abort(error);
        throw error;
      }),
      client.pull(tag.step + 1, into, { ...options, signal }),
    ]);
    return version;
  };
}

function callSignal(options: CallOptions | undefined): AbortSignal | undefined {
  const signals = [options?.signal, options?.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs)].filter(
    (s) => s !== undefined,
  );
  return signals.length === 0 ? undefined : AbortSignal.any(signals);
}

/** Runs `send` for each shard with a step, and says how each went (undefined: taken). */
function eachShard<T>(
  shards: readonly T[],
  steps: ReadonlyArray<number | undefined>,
  send: (shard: T, step: number) => Promise<unknown>,
): Promise<Array<TrainfleetError | undefined>> {
  return Promise.all(
    shards.map(async (shard, i) => {
      const step = steps[i];
      if (step === undefined) return undefined;
      try {
        await send(shard, step);
        return undefined;
      } catch (error) {
        return TrainfleetError.from(error);
      }
    }),
  );
}

function sameVersion(versions: number[], fallback: number): number {
  const version = versions[0] ?? fallback;
  if (versions.some((v) => v !== version)) {
    throw new TrainfleetError(Code.ABORTED, `shards answered different versions (${versions.join(", ")}); pull again`);
  }
  return version;
}

function createGrpcParameterClient(
  jobId: string,
  shards: readonly ShardEndpoint[],
  chunkBytes: number,
  tls: (shard: ShardEndpoint) => ClientSecurity | undefined,
): ParameterClient {
  const chunkElements = Math.max(1, Math.floor(chunkBytes / 4));
  const clients = shards.map((shard) => ({ shard, client: createClient(ParameterServerService, shard.address, tls(shard)) }));
  const client: Omit<ParameterClient, "pushThenPull"> = {
    async pull(minVersion, into, options) {
      return sameVersion(await client.pullEach(minVersion, into, options), minVersion);
    },
    pullEach(minVersion, into, options) {
      return Promise.all(clients.map(({ shard, client }) => pullShard(client, jobId, shard, minVersion, into, options)));
    },
    async push(tag, gradient, options) {
      await Promise.all(
        clients.map(({ shard, client }) => client.push(chunkMessages(jobId, tag, shard, gradient, chunkElements), options)),
      );
    },
    pushEach(tag, steps, gradient, options) {
      return eachShard(clients, steps, async ({ shard, client }, step) => {
        await client.push(chunkMessages(jobId, { ...tag, step }, shard, gradient, chunkElements), options);
      });
    },
    close() {
      for (const { client } of clients) client.close();
    },
  };
  return { ...client, pushThenPull: pushThenPull(client) };
}

function* chunkMessages(
  jobId: string,
  tag: PushTag,
  shard: Range,
  gradient: Float32Array,
  chunkElements: number,
): Iterable<MessageInitShape<typeof PushRequestSchema>> {
  for (const chunk of chunkRanges(shard, chunkElements)) {
    yield {
      jobId,
      ...tag,
      offset: BigInt(chunk.begin),
      data: float32Bytes(gradient.subarray(chunk.begin, chunk.end)),
    };
  }
}

async function pullShard(
  client: ClientOf<typeof ParameterServerService>,
  jobId: string,
  shard: ShardEndpoint,
  minVersion: number,
  into: Float32Array,
  options: CallOptions | undefined,
): Promise<number> {
  let version = -1;
  let received = 0;
  for await (const chunk of client.pull({ jobId, minVersion }, options)) {
    const offset = Number(chunk.offset);
    if (offset < shard.begin || offset + chunk.data.byteLength / 4 > shard.end) {
      throw new TrainfleetError(
        Code.DATA_LOSS,
        `shard ${shard.index} sent a chunk at offset ${offset} outside its range [${shard.begin}, ${shard.end})`,
      );
    }
    decodeFloat32Into(chunk.data, into, offset);
    received += chunk.data.byteLength / 4;
    version = chunk.version;
  }
  if (received !== shard.end - shard.begin) {
    throw new TrainfleetError(Code.DATA_LOSS, `shard ${shard.index} sent ${received} of ${shard.end - shard.begin} parameters`);
  }
  return version;
}
