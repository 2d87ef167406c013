/**
 * The shard's TCP data channel: the same push and pull as the gRPC service, in the frames
 * of dataplane/src/tcp/frames.ts. The kernel writes a pushed chunk's bytes straight
 * into the rank's contribution buffer (no copy), and parameters are written to the socket
 * from the shard's own memory, each chunk as soon as the step has applied it.
 */
import { createServer, Socket } from "node:net";
import { freeKernelArray, kernelUint16Array } from "@trainfleet/kernels";
import { Code, maxChunkBytes, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import type { WireCodec } from "../codec/wire-codec.js";
import { wireCodec } from "../codec/wire-codec.js";
import type { PushTransaction } from "../push-transaction.js";
import type { ShardPort } from "../shard-port.js";
import { FrameParser } from "./frame-parser.js";
import { errorFrame, frame } from "./frame-writer.js";
import type { FrameHeader } from "./frames.js";
import { FrameType, headerBytes } from "./frames.js";

export interface DataServer {
  readonly address: string;
  /** Connections whose pushed bytes the kernel writes in place (all of them, unless Node hid the socket handle). */
  readonly connectionsReadInPlace: number;
  close(): Promise<void>;
}

export async function startDataServer(shard: ShardPort, host: string, logger: Logger): Promise<DataServer> {
  const sockets = new Set<Socket>();
  let connectionsReadInPlace = 0;
  const closing = new AbortController();
  // Shared by every connection: each chunk of each version is encoded once, whoever pulls it.
  const encoded = new EncodedParameters();
  // Paused, so that no byte is read before the connection is moved to a socket that reads in place.
  const server = createServer({ pauseOnConnect: true }, (accepted) => {
    const { socket, inPlace } = serveConnection(shard, accepted, logger, closing.signal, encoded);
    if (inPlace) connectionsReadInPlace++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    address: `${host}:${port}`,
    get connectionsReadInPlace() {
      return connectionsReadInPlace;
    },
    close: () =>
      new Promise<void>((resolve) => {
        closing.abort();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
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
  if (handle === null || handle === undefined) {
    accepted.on("data", (chunk: Buffer) => {
      try {
        parser.feed(chunk);
      } catch (error) {
        onError(error);
      }
    });
    accepted.resume();
    return { socket: accepted, inPlace: false };
  }
  holder._handle = null;
  const socket = new Socket({
    handle,
    onread: {
      buffer: () => parser.nextBuffer(),
      callback: (count: number) => {
        try {
          parser.advance(count);
        } catch (error) {
          onError(error);
        }
        return true;
      },
    },
  } as ConstructorParameters<typeof Socket>[0]);
  // The emptied original only settles the server's connection count; the descriptor lives on in `socket`.
  accepted.destroy();
  return { socket, inPlace: true };
}

function serveConnection(
  shard: ShardPort,
  accepted: Socket,
  logger: Logger,
  closing: AbortSignal,
  encoded: EncodedParameters,
): { socket: Socket; inPlace: boolean } {
  let jobId: string | undefined;
  let push: PushTransaction | undefined;
  let pushError: TrainfleetError | undefined;
  let discard = new Uint8Array(0);
  /** Where 16-bit pushed values land before they are decoded: in the kernel memory, for the SIMD conversion. */
  let staging: Uint16Array = new Uint16Array(0);
  // Requests may be pipelined (a pull right before the push it waits for); replies leave
  // in request order, even when an earlier one (a pull waiting for its chunks) takes longer.
  let replies: Promise<void> = Promise.resolve();
  const reply = (send: () => Promise<void> | void) => {
    replies = replies.then(send).catch((error: unknown) => fail(error));
  };
  const fail = (error: unknown) => {
    logger.warn({ err: TrainfleetError.from(error).message }, "data channel request failed");
    socket.write(errorFrame(error));
  };
  /** Pulls on this connection still waiting for parameters. */
  const waitingPulls = new Set<AbortController>();
  const endWaitingPulls = (reason: TrainfleetError) => {
    for (const pull of waitingPulls) pull.abort(reason);
  };
  const rejectPush = (error: unknown) => {
    pushError = TrainfleetError.from(error);
    push?.abort();
    // A pull sent before this push waits for the version the push was to complete: it never comes.
    endWaitingPulls(
      new TrainfleetError(Code.ABORTED, `the push this pull waits for was rejected (${pushError.message}); push again, then pull`),
    );
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
          if (staging.byteLength < header.payloadBytes) {
            freeKernelArray(staging);
            staging = kernelUint16Array(Math.ceil(header.payloadBytes / 2));
          }
          return new Uint8Array(staging.buffer, staging.byteOffset, header.payloadBytes);
        } catch (error) {
          rejectPush(error);
          return scratch(header.payloadBytes);
        }
      },
      frame(header, payload) {
        switch (header.type) {
          case FrameType.HELLO: {
            jobId = Buffer.from(payload).toString("utf8");
            const served = shard.config?.jobId;
            if (served !== undefined && served !== jobId) {
              const wrongJob = new TrainfleetError(Code.FAILED_PRECONDITION, `job_id: this shard serves job "${served}", not "${jobId}"`, {
                field: "job_id",
              });
              jobId = undefined;
              return reply(() => fail(wrongJob));
            }
            return reply(() => void socket.write(frame({ type: FrameType.HELLO_OK })));
          }
          case FrameType.PUSH_CHUNK:
            if (jobId === undefined && pushError === undefined)
              rejectPush(new TrainfleetError(Code.FAILED_PRECONDITION, "send HELLO with the job id first"));
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
              rejectPush(error);
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
            const pull = new AbortController();
            waitingPulls.add(pull);
            const signal = AbortSignal.any([closing, pull.signal]);
            return reply(() => sendParameters(shard, socket, pullJob, header, signal, encoded).finally(() => waitingPulls.delete(pull)));
          }
          default:
            return reply(() =>
              fail(new TrainfleetError(Code.INVALID_ARGUMENT, `unexpected frame type ${header.type} on a shard's data channel`)),
            );
        }
      },
    },
    maxChunkBytes,
  );
  const { socket, inPlace } = readInPlace(accepted, parser, (error) => {
    fail(error);
    socket.destroy();
  });
  socket.setNoDelay(true);
  socket.on("close", () => {
    endWaitingPulls(new TrainfleetError(Code.CANCELLED, "data channel connection closed"));
    freeKernelArray(staging);
  });
  socket.on("error", (error) => logger.debug({ err: error.message }, "data channel connection error"));
  return { socket, inPlace };
}

/**
 * The shard's parameters in a 16-bit wire dtype, each chunk encoded once per version (and
 * again after the shard's revision changes: a version computed again holds other values).
 */
class EncodedParameters {
  #dtype = 0;
  #revision = -1;
  #values: Uint16Array = new Uint16Array(0);
  #chunkVersions = new Int32Array(0);

  chunk(codec: WireCodec, dtype: number, shard: ShardPort, index: number, version: number, values: Float32Array): Uint8Array {
    const { begin, end } = shard.chunks[index]!;
    if (this.#revision !== shard.revision) {
      this.#chunkVersions.fill(-1);
      this.#revision = shard.revision;
    }
    if (this.#dtype !== dtype || this.#values.length !== values.length || this.#chunkVersions.length !== shard.chunks.length) {
      this.#dtype = dtype;
      freeKernelArray(this.#values);
      this.#values = kernelUint16Array(values.length);
      this.#chunkVersions = new Int32Array(shard.chunks.length).fill(-1);
    }
    const target = this.#values.subarray(begin, end);
    if (this.#chunkVersions[index] !== version) {
      codec.encode(values, begin, end, target);
      this.#chunkVersions[index] = version;
    }
    return new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
  }
}

async function sendParameters(
  shard: ShardPort,
  socket: Socket,
  jobId: string | undefined,
  request: FrameHeader,
  signal: AbortSignal,
  encoded: EncodedParameters,
): Promise<void> {
  if (jobId === undefined) throw new TrainfleetError(Code.FAILED_PRECONDITION, "send HELLO with the job id first");
  const codec = wireCodec(request.dtype);
  const version = await shard.streamParameters(jobId, request.step, signal, (index, version, values) => {
    const { begin, end } = shard.chunks[index]!;
    const bytes = (end - begin) * codec.bytesPerValue;
    socket.write(
      frame({
        type: FrameType.PARAMS,
        dtype: request.dtype,
        step: version,
        offset: shard.config!.range.begin + begin,
        payloadBytes: bytes,
      }),
    );
    // In sync mode a chunk cannot change before this pull's reader has it (the step after
    // next needs the reader's push), so the socket may send it from memory without a copy.
    // In async mode `values` is this pull's own copy, but the shared encodings move on with
    // the next version while this write may still be queued: those go as a copy.
    const data =
      codec.bytesPerValue === 4
        ? new Uint8Array(values.buffer, values.byteOffset + begin * 4, bytes)
        : encoded.chunk(codec, request.dtype, shard, index, version, values);
    socket.write(codec.bytesPerValue !== 4 && shard.config?.mode === "async" ? Buffer.from(data) : data);
    shard.stats.bytesOut += bytes;
  });
  socket.write(frame({ type: FrameType.PULL_END, step: version }));
}
