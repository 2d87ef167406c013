/**
 * The shard's TCP data channel: the same push and pull as the gRPC service, in the frames
 * of proto/src/data-channel/frames.ts. A pushed chunk's bytes are copied once, from the
 * socket's buffer straight into the rank's contribution buffer; parameters are written to
 * the socket from the shard's own memory, without building messages.
 */
import { createServer } from "node:net";
import type { Socket } from "node:net";
import { FrameParser, FrameType, errorFrame, frame, headerBytes, maxChunkBytes, wireCodec } from "@trainfleet/proto";
import type { FrameHeader, Logger } from "@trainfleet/proto";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { ParameterShard, PushTransaction } from "./parameter-shard.js";

export interface DataServer {
  readonly address: string;
  close(): Promise<void>;
}

export async function startDataServer(shard: ParameterShard, host: string, logger: Logger): Promise<DataServer> {
  const sockets = new Set<Socket>();
  const closing = new AbortController();
  // Shared by every connection: each version is encoded once, whoever pulls it.
  const encodedCache: EncodedParameters = { version: -1, dtype: 0, values: new Uint16Array(0) };
  const server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    serveConnection(shard, socket, logger, closing.signal, encodedCache);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    address: `${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        closing.abort();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function serveConnection(shard: ParameterShard, socket: Socket, logger: Logger, closing: AbortSignal, encodedCache: EncodedParameters): void {
  let jobId: string | undefined;
  let push: PushTransaction | undefined;
  let pushError: TrainfleetError | undefined;
  let discard = new Uint8Array(0);
  // Requests may be pipelined (a pull right behind a push); replies leave in request order,
  // even when an earlier one (a pull waiting for its version) takes longer.
  let replies: Promise<void> = Promise.resolve();
  const reply = (send: () => Promise<void> | void) => {
    replies = replies.then(send).catch((error: unknown) => fail(error));
  };
  const fail = (error: unknown) => {
    logger.warn({ err: TrainfleetError.from(error).message }, "data channel request failed");
    socket.write(errorFrame(error));
  };
  /** Where a compressed chunk's float32 values go once decoded. */
  let decodeTarget: Uint8Array | undefined;
  // The chunk as the shard sees it: float32 values, whatever the wire carried.
  const chunkOf = (header: FrameHeader) => ({
    jobId: jobId ?? "",
    generation: header.generation,
    step: header.step,
    rank: header.rank,
    offset: header.offset,
    byteLength: (header.payloadBytes / wireCodec(header.dtype).bytesPerValue) * 4,
  });
  const scratch = (bytes: number) => {
    if (discard.byteLength < bytes) discard = new Uint8Array(bytes);
    return discard.subarray(0, bytes);
  };
  const parser = new FrameParser(
    {
      payloadTarget(header) {
        if (header.type !== FrameType.PUSH_CHUNK || pushError !== undefined || jobId === undefined) return scratch(header.payloadBytes);
        push ??= shard.beginPush();
        try {
          const target = push.reserve(chunkOf(header));
          if (wireCodec(header.dtype).bytesPerValue === 4) return target;
          decodeTarget = target;
          return scratch(header.payloadBytes);
        } catch (error) {
          pushError = TrainfleetError.from(error);
          push.abort();
          return scratch(header.payloadBytes);
        }
      },
      frame(header, payload) {
        switch (header.type) {
          case FrameType.HELLO: {
            jobId = Buffer.from(payload).toString("utf8");
            const served = shard.config?.jobId;
            if (served !== undefined && served !== jobId) {
              const wrongJob = new TrainfleetError(Code.FAILED_PRECONDITION, `job_id: this shard serves job "${served}", not "${jobId}"`, { field: "job_id" });
              jobId = undefined;
              return reply(() => fail(wrongJob));
            }
            return reply(() => void socket.write(frame({ type: FrameType.HELLO_OK })));
          }
          case FrameType.PUSH_CHUNK:
            if (jobId === undefined) pushError ??= new TrainfleetError(Code.FAILED_PRECONDITION, "send HELLO with the job id first");
            if (pushError !== undefined || push === undefined) return;
            try {
              const codec = wireCodec(header.dtype);
              if (codec.bytesPerValue === 2) {
                const target = decodeTarget!;
                decodeTarget = undefined;
                const values = new Float32Array(target.buffer, target.byteOffset, target.byteLength / 4);
                codec.decode(new Uint16Array(payload.buffer, payload.byteOffset, payload.byteLength / 2), values, 0);
              }
              push.received(chunkOf(header));
            } catch (error) {
              pushError = TrainfleetError.from(error);
              push.abort();
            }
            return;
          case FrameType.PUSH_END: {
            const transaction = push;
            const error = pushError;
            push = undefined;
            pushError = undefined;
            if (error !== undefined) return reply(() => fail(error));
            const result = transaction?.commit() ?? { chunksAccepted: 0, chunksDuplicate: 0, version: shard.version };
            const ack = Buffer.allocUnsafe(headerBytes + 8);
            frame({ type: FrameType.PUSH_ACK, step: result.version, payloadBytes: 8 }).copy(ack);
            ack.writeUInt32LE(result.chunksAccepted, headerBytes);
            ack.writeUInt32LE(result.chunksDuplicate, headerBytes + 4);
            return reply(() => void socket.write(ack));
          }
          case FrameType.PULL: {
            const pullJob = jobId;
            return reply(() => sendParameters(shard, socket, pullJob, header, closing, encodedCache));
          }
          default:
            return reply(() => fail(new TrainfleetError(Code.INVALID_ARGUMENT, `unexpected frame type ${header.type} on a shard's data channel`)));
        }
      },
    },
    maxChunkBytes,
  );
  socket.on("data", (chunk) => {
    try {
      parser.feed(chunk);
    } catch (error) {
      fail(error);
      socket.destroy();
    }
  });
  socket.on("error", (error) => logger.debug({ err: error.message }, "data channel connection error"));
}

/** The shard's parameters in a 16-bit wire dtype, encoded once per version. */
interface EncodedParameters {
  version: number;
  dtype: number;
  values: Uint16Array;
}

async function sendParameters(shard: ParameterShard, socket: Socket, jobId: string | undefined, request: FrameHeader, closing: AbortSignal, cache: EncodedParameters): Promise<void> {
  if (jobId === undefined) throw new TrainfleetError(Code.FAILED_PRECONDITION, "send HELLO with the job id first");
  const codec = wireCodec(request.dtype);
  const version = await shard.waitForVersion(jobId, request.step, closing);
  const begin = shard.config!.range.begin;
  const parameters = shard.parameters;
  if (codec.bytesPerValue === 2 && (cache.version !== version || cache.dtype !== request.dtype)) {
    if (cache.values.length !== parameters.length) cache.values = new Uint16Array(parameters.length);
    codec.encode(parameters, 0, parameters.length, cache.values);
    cache.version = version;
    cache.dtype = request.dtype;
  }
  for (const chunk of shard.chunks) {
    const bytes = (chunk.end - chunk.begin) * codec.bytesPerValue;
    socket.write(frame({ type: FrameType.PARAMS, dtype: request.dtype, step: version, offset: begin + chunk.begin, payloadBytes: bytes }));
    // In sync mode the parameters cannot change before this pull's reader has them all
    // (the next step needs its push), so the socket may send from memory without a copy.
    const source = codec.bytesPerValue === 4 ? parameters : cache.values;
    socket.write(new Uint8Array(source.buffer, source.byteOffset + chunk.begin * codec.bytesPerValue, bytes));
    shard.stats.bytesOut += bytes;
  }
  socket.write(frame({ type: FrameType.PULL_END, step: version }));
}
