/**
 * One connection of a shard's TCP data channel: the same push and pull as the gRPC service,
 * in the frames of frames.ts. The kernel writes a pushed chunk's bytes straight into the
 * rank's contribution buffer where the socket allows it (plaintext; see tcp-data-server.ts),
 * and parameters are written to the socket from the shard's own memory, each chunk as soon
 * as the step has applied it. A connection whose certificate may not push (a coordinator's)
 * has every push refused before any of its bytes reaches the shard.
 *
 * Bounded (data-channel-limits.ts): a frame of a type a client does not send, or a HELLO,
 * PUSH_END or PULL with an oversized payload, closes the connection at its header, before
 * its payload is read; a refused chunk is read and dropped without a buffer of its size; a
 * connection that says no HELLO in time, or stays silent with nothing of its own waiting,
 * is closed; so is one that pipelines more requests than the limit.
 */
import type { Socket } from "node:net";
import { freeKernelArray, kernelUint16Array } from "@trainfleet/kernels";
import type { PeerIdentity } from "@trainfleet/proto";
import { Code, maxChunkBytes, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import type { WireCodec } from "../codec/wire-codec.js";
import { wireCodec } from "../codec/wire-codec.js";
import type { PushTransaction } from "../push-transaction.js";
import type { ShardPort } from "../shard-port.js";
import type { DataChannelLimits } from "./data-channel-limits.js";
import { dataChannelLimitFlags } from "./data-channel-limits.js";
import { FrameParser, skip } from "./frame-parser.js";
import { errorFrame, frame } from "./frame-writer.js";
import type { FrameHeader } from "./frames.js";
import { FrameType, headerBytes } from "./frames.js";
import type { Write } from "./paced-writer.js";
import { pacedWriter } from "./paced-writer.js";

export interface ConnectionOptions {
  /** Aborted when the server closes: pulls still waiting end. */
  closing: AbortSignal;
  /** Shared by every connection of the server. */
  encoded: EncodedParameters;
  /** Whom the client's certificate names, over mutual TLS: the shard checks it against the rank pushed. */
  peer?: PeerIdentity | undefined;
  /** Why this connection may not push (its certificate's role), if it may not. */
  pushRefusal?: TrainfleetError | undefined;
  /** Whether the socket is TLS: its writes are then paced (paced-writer.ts). */
  tls: boolean;
  limits: DataChannelLimits;
  /** Starts reading the connection into `parser`; returns the socket that reads it. */
  attach(parser: FrameParser, onError: (error: unknown) => void): Socket;
}

/** A job id is a DNS label (63 characters at most, spec validation): a HELLO past 253 bytes holds no job id. */
const maxHelloBytes = 253;

/** Serves one accepted connection; returns the socket that reads it. */
export function serveConnection(shard: ShardPort, logger: Logger, options: ConnectionOptions): Socket {
  const { closing, encoded, pushRefusal, limits } = options;
  let jobId: string | undefined;
  let push: PushTransaction | undefined;
  let pushError: TrainfleetError | undefined;
  /** Where 16-bit pushed values land before they are decoded: in the kernel memory, for the SIMD conversion. */
  let staging: Uint16Array = new Uint16Array(0);
  // Requests may be pipelined (a pull right before the push it waits for); replies leave
  // in request order, even when an earlier one (a pull waiting for its chunks) takes longer.
  let replies: Promise<void> = Promise.resolve();
  /** Requests whose replies have not all been written: while any waits, the connection is not idle. */
  let pending = 0;
  const reply = (send: () => Promise<void> | void) => {
    if (pending >= limits.maxPendingRequests)
      throw new TrainfleetError(
        Code.RESOURCE_EXHAUSTED,
        `more than ${limits.maxPendingRequests} requests waiting for replies on one data channel connection; read the replies, or raise the shard's ${dataChannelLimitFlags.maxPendingRequests}`,
      );
    pending++;
    replies = replies
      .then(send)
      .catch((error: unknown) => fail(error))
      .finally(() => pending--);
  };
  const fail = (error: unknown) => {
    logger.warn({ err: TrainfleetError.from(error).message }, "data channel request failed");
    write(errorFrame(error));
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
  const parser = new FrameParser(
    {
      payloadTarget(header) {
        if (hungUp) return skip;
        idle.refresh();
        if (header.type !== FrameType.PUSH_CHUNK) return refuseAtHeader(header);
        if (pushError !== undefined || jobId === undefined) return skip;
        if (pushRefusal !== undefined) {
          rejectPush(pushRefusal);
          return skip;
        }
        push ??= shard.beginPush(options.peer);
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
          return skip;
        }
      },
      frame(header, payload) {
        if (hungUp) return;
        switch (header.type) {
          case FrameType.HELLO: {
            clearTimeout(helloDeadline);
            jobId = Buffer.from(payload).toString("utf8");
            const served = shard.config?.jobId;
            if (served !== undefined && served !== jobId) {
              const wrongJob = new TrainfleetError(Code.FAILED_PRECONDITION, `job_id: this shard serves job "${served}", not "${jobId}"`, {
                field: "job_id",
              });
              jobId = undefined;
              return reply(() => fail(wrongJob));
            }
            return reply(() => write(frame({ type: FrameType.HELLO_OK })));
          }
          case FrameType.PUSH_CHUNK:
            if (jobId === undefined && pushError === undefined)
              rejectPush(new TrainfleetError(Code.FAILED_PRECONDITION, "send HELLO with the job id first"));
            // A chunk without payload never asked for a place: it is refused here.
            if (pushRefusal !== undefined && pushError === undefined) rejectPush(pushRefusal);
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
            // A refused peer's empty push is refused too: it gets no ack.
            const error = pushError ?? pushRefusal;
            push = undefined;
            pushError = undefined;
            if (error !== undefined) return reply(() => fail(error));
            const result = transaction?.commit() ?? { chunksAccepted: 0, chunksDuplicate: 0, version: shard.version };
            const ack = Buffer.allocUnsafe(headerBytes + 8);
            frame({ type: FrameType.PUSH_ACK, step: result.version, payloadBytes: 8 }).copy(ack);
            ack.writeUInt32LE(result.chunksAccepted, headerBytes);
            ack.writeUInt32LE(result.chunksDuplicate, headerBytes + 4);
            return reply(() => write(ack));
          }
          case FrameType.PULL: {
            const pullJob = jobId;
            const pull = new AbortController();
            waitingPulls.add(pull);
            const signal = AbortSignal.any([closing, pull.signal]);
            return reply(() => sendParameters(shard, write, pullJob, header, signal, encoded).finally(() => waitingPulls.delete(pull)));
          }
          default:
            // Refused at its header (refuseAtHeader): never reaches here.
            return;
        }
      },
    },
    maxChunkBytes,
  );
  const closeWith = (error: TrainfleetError) => {
    fail(error);
    socket.destroy();
  };
  /** Tells a peer that broke no frame why it is cut, and cuts it once it had a moment to read that. */
  let hungUp = false;
  const hangUp = (error: TrainfleetError) => {
    hungUp = true;
    // Debug: a flood of silent connections must not become a flood of log lines.
    logger.debug({ peer: socket.remoteAddress, err: error.message }, "data channel connection closed");
    socket.end(errorFrame(error));
    setTimeout(() => socket.destroy(), 1_000).unref();
  };
  // Timers of their own rather than the socket's: a socket that reads in place has no read activity Node sees.
  const helloDeadline = setTimeout(
    () =>
      hangUp(
        new TrainfleetError(
          Code.DEADLINE_EXCEEDED,
          `no HELLO within ${limits.helloTimeoutMs} ms of connecting; the connection is closed (the shard's ${dataChannelLimitFlags.helloTimeoutMs})`,
        ),
      ),
    limits.helloTimeoutMs,
  ).unref();
  const idle: NodeJS.Timeout = setTimeout(() => {
    // A pull waiting for its version (a slow step) or replies still being written: not idle.
    if (pending > 0) return void idle.refresh();
    hangUp(
      new TrainfleetError(
        Code.DEADLINE_EXCEEDED,
        `no frame for ${limits.idleTimeoutMs} ms and nothing waiting; the connection is closed (the shard's ${dataChannelLimitFlags.idleTimeoutMs}); a client reconnects`,
      ),
    );
  }, limits.idleTimeoutMs).unref();
  const socket = options.attach(parser, (error) => closeWith(TrainfleetError.from(error)));
  const write = pacedWriter(socket, options.tls);
  socket.setNoDelay(true);
  socket.on("close", () => {
    clearTimeout(helloDeadline);
    clearTimeout(idle);
    endWaitingPulls(new TrainfleetError(Code.CANCELLED, "data channel connection closed"));
    freeKernelArray(staging);
  });
  socket.on("error", (error) => logger.debug({ err: error.message }, "data channel connection error"));
  return socket;
}

/**
 * Refuses, at its header, a frame that no client sends with a payload the shard would have
 * to hold: the connection is then closed before the payload is read. What is taken returns
 * `skip` (HELLO's few bytes excepted), so no frame but an accepted chunk costs memory of its size.
 */
function refuseAtHeader(header: FrameHeader): Uint8Array | typeof skip {
  switch (header.type) {
    case FrameType.HELLO:
      if (header.payloadBytes > maxHelloBytes)
        throw new TrainfleetError(
          Code.INVALID_ARGUMENT,
          `job_id: a HELLO of ${header.payloadBytes} bytes; a job id has at most ${maxHelloBytes}; the connection is closed`,
          { field: "job_id" },
        );
      return new Uint8Array(header.payloadBytes);
    case FrameType.PUSH_END:
    case FrameType.PULL:
      if (header.payloadBytes !== 0)
        throw new TrainfleetError(
          Code.INVALID_ARGUMENT,
          `a ${header.type === FrameType.PULL ? "PULL" : "PUSH_END"} frame carries no payload, not ${header.payloadBytes} bytes; the connection is closed`,
        );
      return skip;
    default:
      throw new TrainfleetError(
        Code.INVALID_ARGUMENT,
        `frame type ${header.type} is not one a client sends to a shard's data channel (HELLO, PUSH_CHUNK, PUSH_END, PULL); the connection is closed`,
      );
  }
}

/**
 * The shard's parameters in a 16-bit wire dtype, each chunk encoded once per version (and
 * again after the shard's revision changes: a version computed again holds other values).
 */
export class EncodedParameters {
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
  write: Write,
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
    write(
      frame({
        type: FrameType.PARAMS,
        dtype: request.dtype,
        step: version,
        offset: shard.config!.range.begin + begin,
        payloadBytes: bytes,
      }),
    );
    // In sync mode a chunk cannot change before this pull's reader has it (the step after
    // next needs the reader's push), so the socket may send it from memory without a copy
    // (and a TLS socket encrypt it from there, when its turn comes).
    // In async mode `values` is this pull's own copy, but the shared encodings move on with
    // the next version while this write may still be queued: those go as a copy.
    const data =
      codec.bytesPerValue === 4
        ? new Uint8Array(values.buffer, values.byteOffset + begin * 4, bytes)
        : encoded.chunk(codec, request.dtype, shard, index, version, values);
    write(codec.bytesPerValue !== 4 && shard.config?.mode === "async" ? Buffer.from(data) : data);
    shard.stats.bytesOut += bytes;
  });
  write(frame({ type: FrameType.PULL_END, step: version }));
}
