/**
 * A client of every parameter-server shard of a job: pushes a whole gradient and pulls
 * the whole parameter vector, each shard's part in parallel and in chunks. Used by
 * workers, by the coordinator (final parameters) and by benchmarks.
 */
import { ParameterServerService } from "./gen/trainfleet/v1/paramserver_pb.js";
import type { PushRequestSchema } from "./gen/trainfleet/v1/paramserver_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { createClient } from "./grpc-client.js";
import type { CallOptions, ClientOf } from "./grpc-client.js";
import { chunkRanges } from "./partition.js";
import type { Range } from "./partition.js";
import { decodeFloat32Into, float32Bytes } from "./tensor-codec.js";
import { Code, TrainfleetError } from "./errors.js";

export interface ShardEndpoint extends Range {
  index: number;
  address: string;
}

export interface PushTag {
  generation: number;
  step: number;
  rank: number;
}

export interface ParameterClient {
  /** Fills `into` (the whole vector) with version >= minVersion of every shard; returns the version. */
  pull(minVersion: number, into: Float32Array, options?: CallOptions): Promise<number>;
  /** Sends `gradient` (the whole vector) to the shards, each its own range. */
  push(tag: PushTag, gradient: Float32Array, options?: CallOptions): Promise<void>;
  close(): void;
}

export function createParameterClient(jobId: string, shards: readonly ShardEndpoint[], chunkBytes: number): ParameterClient {
  const chunkElements = Math.max(1, Math.floor(chunkBytes / 4));
  const clients = shards.map((shard) => ({ shard, client: createClient(ParameterServerService, shard.address) }));
  return {
    async pull(minVersion, into, options) {
      const versions = await Promise.all(clients.map(({ shard, client }) => pullShard(client, jobId, shard, minVersion, into, options)));
      const version = versions[0] ?? minVersion;
      if (versions.some((v) => v !== version)) {
        throw new TrainfleetError(Code.ABORTED, `shards answered different versions (${versions.join(", ")}); pull again`);
      }
      return version;
    },
    async push(tag, gradient, options) {
      await Promise.all(
        clients.map(({ shard, client }) => client.push(chunkMessages(jobId, tag, shard, gradient, chunkElements), options)),
      );
    },
    close() {
      for (const { client } of clients) client.close();
    },
  };
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
      throw new TrainfleetError(Code.DATA_LOSS, `shard ${shard.index} sent a chunk at offset ${offset} outside its range [${shard.begin}, ${shard.end})`);
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
