/**
 * The WebAssembly kernel memory that the kernels and the data plane share: views that stay
 * valid as it grows, aligned disjoint blocks, bounds, and sockets reading into it. The
 * kernels themselves are tested beside their callers, against the JavaScript loops: the
 * 16-bit codecs in dataplane/test/half-precision-kernels.test.ts, the average, finite
 * check and optimizers in paramserver/test/kernels.test.ts.
 */

import type { AddressInfo, Server } from "node:net";
import { connect, createServer } from "node:net";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { afterEach, describe, expect, it } from "vitest";
import { KernelMemory, kernelFloat32Array, kernelMemory, kernelPointer } from "../src/kernel-memory.js";

const memory = kernelMemory()!;

describe("KernelMemory", () => {
  it("keeps every view valid, reading and writing the same bytes, when the memory grows", () => {
    const small = new KernelMemory({ initialPages: 1, maximumPages: 64 });
    const a = small.float32(1000);
    const b = small.uint16(777);
    a.forEach((_, i) => (a[i] = i * 1.5));
    b.forEach((_, i) => (b[i] = i ^ 0x5555));
    const before = small.byteLength;
    const big = small.float32(200_000); // 800 kB: more than the 64 kB it had
    expect(small.byteLength).toBeGreaterThan(before);
    expect(big.buffer).not.toBe(a.buffer);
    expect(big.buffer.byteLength).toBe(small.byteLength);
    // The old views still hold what was written, and still are the memory: a write through
    // one shows through a view of the grown buffer and the other way round.
    expect(Array.from(a.subarray(0, 4))).toEqual([0, 1.5, 3, 4.5]);
    expect(a[999]).toBe(999 * 1.5);
    expect(b[776]).toBe(776 ^ 0x5555);
    const again = new Float32Array(small.memory.buffer, a.byteOffset, a.length);
    expect(again[999]).toBe(999 * 1.5);
    a[5] = -42;
    expect(again[5]).toBe(-42);
    again[6] = 7;
    expect(a[6]).toBe(7);
    expect(small.owns(a) && small.owns(b) && small.owns(big) && small.owns(again)).toBe(true);
    expect(small.pointer(a, 0, a.length)).toBe(a.byteOffset);
  });

  it("hands out 64-byte-aligned, zeroed, disjoint blocks, and reuses and merges freed ones", () => {
    const small = new KernelMemory({ initialPages: 1, maximumPages: 4 });
    const a = small.float32(10);
    const b = small.float32(10);
    const c = small.float32(10);
    for (const view of [a, b, c]) expect(view.byteOffset % 64).toBe(0);
    expect(a.byteOffset).toBeGreaterThan(0); // address 0 is never a buffer's
    expect(b.byteOffset).toBeGreaterThanOrEqual(a.byteOffset + 40);
    a.fill(1);
    b.fill(2);
    c.fill(3);
    small.free(a);
    small.free(c);
    small.free(b);
    // a, b and c merged back into one free block: 30 floats fit where a was, zeroed.
    const d = small.float32(30);
    expect(d.byteOffset).toBe(a.byteOffset);
    expect(d.every((x) => x === 0)).toBe(true);
    expect(small.allocatedBytes).toBe(128);
    expect(() => small.free(a.subarray(1))).toThrow(/no allocation starts/);
    small.free(d);
    expect(() => small.free(d)).toThrow(/no allocation starts/);
    expect(() => small.free(new Float32Array(4))).toThrow(/no allocation starts/);
    expect(small.allocatedBytes).toBe(0);
  });

  it("says RESOURCE_EXHAUSTED past its maximum", () => {
    const small = new KernelMemory({ initialPages: 1, maximumPages: 2 });
    let caught: unknown;
    try {
      small.float32(100_000);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(TrainfleetError);
    expect((caught as TrainfleetError).code).toBe(Code.RESOURCE_EXHAUSTED);
    // Nothing was taken: what fits still fits.
    expect(small.float32(1000).length).toBe(1000);
  });

  it("gives kernels the address of a range only for views of it, within bounds", () => {
    const view = memory.float32(8);
    expect(kernelPointer(view, 0, 8)).toBe(view.byteOffset);
    expect(kernelPointer(view, 3, 5)).toBe(view.byteOffset + 12);
    expect(kernelPointer(view.subarray(2), 0, 6)).toBe(view.byteOffset + 8);
    expect(kernelPointer(new Float32Array(8), 0, 8)).toBe(-1);
    expect(kernelPointer(view, 0, 9)).toBe(-1);
    expect(kernelPointer(view, -1, 2)).toBe(-1);
    expect(kernelPointer(view, 5, 4)).toBe(-1);
    expect(kernelPointer(view, 0.5, 4)).toBe(-1);
    memory.free(view);
  });

  it("allocates kernelFloat32Array in the process memory (the heap is only its fallback when that is full)", () => {
    const view = kernelFloat32Array(16);
    expect(memory.owns(view)).toBe(true);
    expect(kernelPointer(view, 0, 16)).toBe(view.byteOffset);
    memory.free(view);
  });
});

describe("kernel memory and sockets", () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  it("sends from a view of it with socket.write, and receives into one as connect's onread buffer", async () => {
    const payload = memory.uint8(256 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0xff;
    const receiveBuffer = memory.uint8(64 * 1024);
    server = createServer((socket) => socket.end(payload));
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const received = new Uint8Array(payload.length);
    let length = 0;
    let sameBuffer = true;
    await new Promise<void>((resolve, reject) => {
      const socket = connect({
        port,
        host: "127.0.0.1",
        onread: {
          buffer: receiveBuffer,
          callback(bytes, buffer) {
            sameBuffer &&= buffer.buffer === receiveBuffer.buffer && buffer.byteOffset === receiveBuffer.byteOffset;
            received.set(buffer.subarray(0, bytes), length);
            length += bytes;
            return true;
          },
        },
      });
      socket.on("end", resolve);
      socket.on("error", reject);
    });
    expect(length).toBe(payload.length);
    expect(sameBuffer).toBe(true);
    expect(Buffer.compare(received, payload)).toBe(0);
    memory.free(payload);
    memory.free(receiveBuffer);
  });
});
