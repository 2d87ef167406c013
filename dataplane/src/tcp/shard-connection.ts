/**
 * A worker's TCP connection to one shard's data channel. Requests are pipelined (a pull
 * may be sent right behind a push, before its ack) and the shard answers them in order;
 * pulled parameters land straight in the caller's vector (the socket's `onread` buffer is
 * the place each PARAMS payload belongs): written there by the kernel in plaintext, by
 * OpenSSL's decryption over mutual TLS (with the job's credentials). Over TLS nothing is
 * sent until the shard's certificate has shown it is the shard dialled.
 */

import type { Socket } from "node:net";
import { freeKernelArray, kernelUint16Array } from "@trainfleet/kernels";
import type { ClientSecurity } from "@trainfleet/proto";
import { Code, maxChunkBytes, TrainfleetError, WireDtype } from "@trainfleet/proto";
import type { Range } from "@trainfleet/spec";
import { float32Bytes } from "../codec/tensor-codec.js";
import type { WireCodec } from "../codec/wire-codec.js";
import { wireCodec } from "../codec/wire-codec.js";
import type { PushTag, ShardLink } from "../shard-link.js";
import { connectPlain, connectSecure } from "./client-socket.js";
import { FrameParser } from "./frame-parser.js";
import { errorFromFrame, frame } from "./frame-writer.js";
import type { FrameHeader } from "./frames.js";
import { FrameType } from "./frames.js";
import type { Write } from "./paced-writer.js";
import { pacedWriter } from "./paced-writer.js";

/** A connection and the writer that keeps its writes in order. */
interface Channel {
  socket: Socket;
  write: Write;
}

interface Pending {
  resolve(value: number): void;
  reject(error: TrainfleetError): void;
  /** The whole parameter vector, for a pull. */
  into?: Float32Array;
  received: number;
  /** The versions of the PARAMS frames received, for a pull. */
  versions: Set<number>;
}

export class ShardConnection implements ShardLink {
  readonly #address: string;
  readonly #jobId: string;
  readonly #range: Range;
  readonly #dtype: number;
  readonly #codec: WireCodec;
  readonly #tls: ClientSecurity | undefined;
  /**
   * 16-bit staging for a compressed wire: the whole range, since writes are queued, not
   * copied. Both live in the kernel memory, where the conversions run as SIMD (when the
   * caller's vectors are there too, as a trainer's are).
   */
  #encoded: Uint16Array | undefined;
  #decodeScratch: Uint16Array = new Uint16Array(0);
  #channel: Channel | undefined;
  #connecting: Promise<Channel> | undefined;
  /** Requests sent and not yet answered, oldest first: replies come in that order. */
  #pending: Pending[] = [];
  readonly #small = new Uint8Array(4096);

  /** With `tls`, mutual TLS: the shard's certificate must name `tls.server` (its ps-{index}) in this job. */
  constructor(address: string, jobId: string, range: Range, dtype: number = WireDtype.FLOAT32, tls?: ClientSecurity) {
    this.#address = address;
    this.#tls = tls;
    this.#jobId = jobId;
    this.#range = range;
    this.#dtype = dtype;
    this.#codec = wireCodec(dtype);
  }

  /** Pushes the chunks of `gradient` in this shard's range; resolves when the shard has acked. */
  push(tag: PushTag, gradient: Float32Array, chunks: readonly Range[], signal?: AbortSignal): Promise<void> {
    return this.#request(signal, (write) => {
      const codec = this.#codec;
      if (codec.bytesPerValue === 2) this.#encoded ??= kernelUint16Array(this.#range.end - this.#range.begin);
      for (const chunk of chunks) {
        const bytes = (chunk.end - chunk.begin) * codec.bytesPerValue;
        write(frame({ type: FrameType.PUSH_CHUNK, dtype: this.#dtype, ...tag, offset: chunk.begin, payloadBytes: bytes }));
        if (codec.bytesPerValue === 4) write(float32Bytes(gradient.subarray(chunk.begin, chunk.end)));
        else {
          const staged = this.#encoded!.subarray(chunk.begin - this.#range.begin, chunk.end - this.#range.begin);
          codec.encode(gradient, chunk.begin, chunk.end, staged);
          write(new Uint8Array(staged.buffer, staged.byteOffset, staged.byteLength));
        }
      }
      write(frame({ type: FrameType.PUSH_END, ...tag }));
      return undefined;
    }).then(() => undefined);
  }

  /** Pulls version >= minVersion of this shard's range into `into` (the whole vector); returns the version. */
  pull(minVersion: number, into: Float32Array, signal?: AbortSignal): Promise<number> {
    return this.#request(signal, (write) => {
      write(frame({ type: FrameType.PULL, dtype: this.#dtype, step: minVersion }));
      return into;
    });
  }

  /**
   * The pull goes out before the push it waits for, so that the shard can stream each
   * chunk of the next version back as soon as every rank has pushed it, while the rest of
   * this push is still arriving: both directions of the connection work at once.
   */
  async pushThenPull(
    tag: PushTag,
    gradient: Float32Array,
    chunks: readonly Range[],
    into: Float32Array,
    signal?: AbortSignal,
  ): Promise<number> {
    const [pulled, pushed] = await Promise.allSettled([this.pull(tag.step + 1, into, signal), this.push(tag, gradient, chunks, signal)]);
    // A rejected push also ends the pull (its version will not come): report the cause.
    if (pushed.status === "rejected") throw pushed.reason;
    if (pulled.status === "rejected") throw pulled.reason;
    return pulled.value;
  }

  close(): void {
    this.#fail(new TrainfleetError(Code.CANCELLED, `data channel to ${this.#address} closed`));
  }

  async #request(signal: AbortSignal | undefined, send: (write: Write) => Float32Array | undefined): Promise<number> {
    const { write } = await this.#connected();
    return new Promise<number>((resolve, reject) => {
      const onAbort = () => this.#fail(new TrainfleetError(Code.CANCELLED, "data channel request cancelled"));
      const done = () => signal?.removeEventListener("abort", onAbort);
      const pending: Pending = {
        resolve: (v) => {
          done();
          resolve(v);
        },
        reject: (e) => {
          done();
          reject(e);
        },
        received: 0,
        versions: new Set(),
      };
      this.#pending.push(pending);
      const into = send(write);
      if (into !== undefined) pending.into = into;
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Resolves once the connection has said HELLO; callers are resumed in the order they called. */
  #connected(): Promise<Channel> {
    // Concurrent callers share one connection attempt, and all wait for its HELLO.
    if (this.#connecting !== undefined) return this.#connecting;
    if (this.#channel !== undefined && !this.#channel.socket.destroyed) return Promise.resolve(this.#channel);
    this.#connecting = this.#connect().finally(() => (this.#connecting = undefined));
    return this.#connecting;
  }

  async #connect(): Promise<Channel> {
    const [host, port] = [
      this.#address.slice(0, this.#address.lastIndexOf(":")),
      Number(this.#address.slice(this.#address.lastIndexOf(":") + 1)),
    ];
    const parser = new FrameParser({ payloadTarget: (h) => this.#target(h), frame: (h, p) => this.#frame(h, p) }, maxChunkBytes);
    const onError = (error: unknown) => this.#fail(TrainfleetError.from(error, Code.DATA_LOSS));
    const socket =
      this.#tls === undefined
        ? connectPlain(host, port, parser, onError)
        : connectSecure(host, port, parser, onError, this.#tls, this.#address);
    const channel = { socket, write: pacedWriter(socket, this.#tls !== undefined) };
    this.#channel = channel;
    // Events of a socket that has since been replaced must not touch its successor.
    socket.on(
      "error",
      (error) =>
        channel === this.#channel &&
        this.#fail(new TrainfleetError(Code.UNAVAILABLE, `data channel to ${this.#address}: ${error.message}`, { cause: error })),
    );
    socket.on(
      "close",
      () => channel === this.#channel && this.#fail(new TrainfleetError(Code.UNAVAILABLE, `data channel to ${this.#address} closed`)),
    );
    await new Promise<number>((resolve, reject) => {
      this.#pending.push({ resolve, reject, received: 0, versions: new Set() });
      const hello = Buffer.from(this.#jobId);
      const sayHello = () => {
        channel.write(frame({ type: FrameType.HELLO, payloadBytes: hello.byteLength }));
        channel.write(hello);
      };
      // Over TLS, not a byte (not even the job id) before the shard's identity is checked.
      if (this.#tls === undefined) sayHello();
      else socket.once("secureConnect", sayHello);
    }).catch((error: unknown) => {
      // A refused HELLO leaves no connection behind for the next request to find.
      if (channel === this.#channel) {
        this.#channel = undefined;
        socket.destroy();
      }
      throw error;
    });
    return channel;
  }

  #target(header: FrameHeader): Uint8Array {
    const into = this.#pending[0]?.into;
    if (header.type !== FrameType.PARAMS) {
      return header.payloadBytes <= this.#small.byteLength
        ? this.#small.subarray(0, header.payloadBytes)
        : new Uint8Array(header.payloadBytes);
    }
    const codec = wireCodec(header.dtype);
    const elements = header.payloadBytes / codec.bytesPerValue;
    if (
      into === undefined ||
      header.offset < this.#range.begin ||
      header.offset + elements > this.#range.end ||
      !Number.isInteger(elements)
    ) {
      throw new TrainfleetError(
        Code.DATA_LOSS,
        `shard at ${this.#address} sent parameters at offset ${header.offset} outside its range [${this.#range.begin}, ${this.#range.end})`,
      );
    }
    // float32 lands in place; 16-bit values are staged, then decoded in frame().
    if (codec.bytesPerValue === 4) return new Uint8Array(into.buffer, into.byteOffset + header.offset * 4, header.payloadBytes);
    if (this.#decodeScratch.length < elements) {
      freeKernelArray(this.#decodeScratch);
      this.#decodeScratch = kernelUint16Array(elements);
    }
    return new Uint8Array(this.#decodeScratch.buffer, this.#decodeScratch.byteOffset, header.payloadBytes);
  }

  #frame(header: FrameHeader, payload: Uint8Array): void {
    const pending = this.#pending[0];
    if (pending === undefined)
      return this.#fail(new TrainfleetError(Code.DATA_LOSS, `the shard at ${this.#address} answered a request that was not made`));
    switch (header.type) {
      case FrameType.PARAMS: {
        const codec = wireCodec(header.dtype);
        const elements = header.payloadBytes / codec.bytesPerValue;
        if (codec.bytesPerValue === 2)
          codec.decode(new Uint16Array(payload.buffer, payload.byteOffset, elements), pending.into!, header.offset);
        pending.received += elements;
        pending.versions.add(header.step);
        return;
      }
      case FrameType.HELLO_OK:
      case FrameType.PUSH_ACK:
        this.#pending.shift();
        return pending.resolve(header.step);
      case FrameType.PULL_END: {
        this.#pending.shift();
        const expected = this.#range.end - this.#range.begin;
        if (pending.received !== expected)
          return pending.reject(
            new TrainfleetError(Code.DATA_LOSS, `shard at ${this.#address} sent ${pending.received} of ${expected} parameters`),
          );
        // Chunks are sent as each becomes ready; only an asynchronous step could mix versions.
        if (pending.versions.size > 1)
          return pending.reject(
            new TrainfleetError(
              Code.ABORTED,
              `shard at ${this.#address} sent chunks of versions ${[...pending.versions].join(", ")}; pull again`,
            ),
          );
        return pending.resolve(header.step);
      }
      case FrameType.ERROR:
        this.#pending.shift();
        return pending.reject(errorFromFrame(header, payload));
      default:
        this.#fail(new TrainfleetError(Code.DATA_LOSS, `unexpected frame type ${header.type} from the shard at ${this.#address}`));
    }
  }

  /** Ends the connection and every request on it; the next request reconnects. */
  #fail(error: TrainfleetError): void {
    const pending = this.#pending;
    this.#pending = [];
    const socket = this.#channel?.socket;
    this.#channel = undefined;
    socket?.destroy();
    for (const request of pending) request.reject(error);
  }
}
