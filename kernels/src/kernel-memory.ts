/**
 * The memory the WebAssembly kernels work in, and an allocator of typed-array views into it.
 *
 * The kernels can only touch their own linear memory, and copying operands in and out
 * would cost as much as the JavaScript loops they replace, so the hot buffers (a shard's
 * parameters, per-rank contributions, average, optimizer state, staging buffers) live
 * there from the start, allocated here as ordinary Float32Array / Uint16Array views.
 *
 * The memory is `shared` (backed by a SharedArrayBuffer). Growing an ordinary
 * WebAssembly.Memory detaches its ArrayBuffer, which empties every view made before;
 * a shared memory grows in place, its address range reserved up front, and only hands out
 * a new, longer SharedArrayBuffer object over the same bytes, so every view stays valid.
 * A view of any of those buffer objects is recognised as kernel memory (see `pointer`).
 *
 * Allocations are for long-lived buffers: first fit over a free list sorted by offset,
 * coalesced on free, growing the memory when nothing fits. Blocks are 64-byte aligned
 * (a cache line) and zero when handed out, like `new Float32Array(n)`.
 */
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { WasmMemory } from "./wasm-api.js";
import { wasmApi, wasmPageBytes } from "./wasm-api.js";

/** The most a 32-bit WebAssembly memory holds: 65536 pages, 4 GiB. */
export const kernelMemoryMaxPages = 65536;

/** Allocations start on multiples of this, and their sizes are rounded up to it. */
export const kernelMemoryAlignment = 64;

/** Grow by at least this many pages (1 MiB) at a time, so that small allocations do not grow it page by page. */
const minGrowPages = 16;

export interface KernelMemoryOptions {
  /** Initial size in 64 KiB pages (default 16, 1 MiB). */
  initialPages?: number;
  /** The most it may grow to, in pages (default and at most 65536, 4 GiB). */
  maximumPages?: number;
}

/** The typed arrays that kernels take: anything with a buffer, an offset and an element size. */
export interface KernelView {
  readonly buffer: ArrayBufferLike;
  readonly byteOffset: number;
  readonly byteLength: number;
  readonly length: number;
  readonly BYTES_PER_ELEMENT: number;
}

interface Block {
  offset: number;
  size: number;
}

export class KernelMemory {
  readonly memory: WasmMemory;
  readonly maximumPages: number;
  /** Every SharedArrayBuffer object the memory has handed out: one per size it has had. */
  readonly #buffers = new WeakSet<ArrayBufferLike>();
  #buffer: SharedArrayBuffer;
  /** Free blocks, sorted by offset, never adjacent (coalesced), all zero-filled. */
  readonly #free: Block[] = [];
  /** Allocated blocks: offset -> size in bytes. */
  readonly #allocated = new Map<number, number>();
  #allocatedBytes = 0;

  constructor(options: KernelMemoryOptions = {}) {
    const initial = options.initialPages ?? minGrowPages;
    this.maximumPages = Math.min(options.maximumPages ?? kernelMemoryMaxPages, kernelMemoryMaxPages);
    if (!(initial >= 1 && initial <= this.maximumPages))
      throw new RangeError(`KernelMemory: initialPages must be in 1..${this.maximumPages}, got ${initial}`);
    this.memory = new wasmApi.Memory({ initial, maximum: this.maximumPages, shared: true });
    this.#buffer = this.#currentBuffer();
    // Offset 0 is never handed out: no buffer's pointer is 0.
    this.#release(kernelMemoryAlignment, this.#buffer.byteLength - kernelMemoryAlignment);
  }

  /** The memory's current size in bytes. */
  get byteLength(): number {
    return this.#currentBuffer().byteLength;
  }

  /** Bytes in allocated blocks (sizes rounded up to the alignment). */
  get allocatedBytes(): number {
    return this.#allocatedBytes;
  }

  /** A zeroed Float32Array of `length` elements: a new block, until `free`d. */
  float32(length: number): Float32Array {
    return this.#view(Float32Array, length);
  }

  uint16(length: number): Uint16Array {
    return this.#view(Uint16Array, length);
  }

  uint8(length: number): Uint8Array {
    return this.#view(Uint8Array, length);
  }

  int32(length: number): Int32Array {
    return this.#view(Int32Array, length);
  }

  /** Gives a block back. `view` must be the very view an allocation returned (or one starting where it does). */
  free(view: KernelView): void {
    const size = this.#buffers.has(view.buffer) ? this.#allocated.get(view.byteOffset) : undefined;
    if (size === undefined)
      throw new RangeError(
        `KernelMemory.free: no allocation starts at byte ${view.byteOffset} of this memory (freed twice, or not allocated here)`,
      );
    this.#allocated.delete(view.byteOffset);
    this.#allocatedBytes -= size;
    // Zeroed now, so that every free block is zero and an allocation needs no clearing.
    new Uint8Array(this.#currentBuffer(), view.byteOffset, size).fill(0);
    this.#release(view.byteOffset, size);
  }

  /** Whether `view` is a view of this memory (whatever size the memory had when it was made). */
  owns(view: KernelView): boolean {
    return this.#buffers.has(view.buffer);
  }

  /**
   * The byte address of element `from` of `view` for a kernel working on [from, to), or -1
   * when the view is not in this memory or [from, to) is not a range of integers within it.
   */
  pointer(view: KernelView, from: number, to: number): number {
    if (!this.#buffers.has(view.buffer)) return -1;
    if (!(from === (from | 0) && to === (to | 0) && from >= 0 && from <= to && to <= view.length)) return -1;
    return view.byteOffset + from * view.BYTES_PER_ELEMENT;
  }

  #view<T>(
    type: { new (buffer: SharedArrayBuffer, byteOffset: number, length: number): T; readonly BYTES_PER_ELEMENT: number },
    length: number,
  ): T {
    if (!(Number.isInteger(length) && length >= 0)) throw new RangeError(`KernelMemory: invalid length ${length}`);
    const offset = this.#allocate(length * type.BYTES_PER_ELEMENT);
    // The buffer is read after allocating: the allocation may have grown the memory.
    return new type(this.#buffer, offset, length);
  }

  #allocate(bytes: number): number {
    const size = Math.max(kernelMemoryAlignment, Math.ceil(bytes / kernelMemoryAlignment) * kernelMemoryAlignment);
    let index = this.#free.findIndex((block) => block.size >= size);
    if (index < 0) {
      this.#grow(size);
      index = this.#free.findIndex((block) => block.size >= size);
    }
    const block = this.#free[index]!;
    const offset = block.offset;
    if (block.size === size) this.#free.splice(index, 1);
    else {
      block.offset += size;
      block.size -= size;
    }
    this.#allocated.set(offset, size);
    this.#allocatedBytes += size;
    return offset;
  }

  /** Grows the memory so that a block of `size` bytes fits at its end. */
  #grow(size: number): void {
    const end = this.#buffer.byteLength;
    const last = this.#free.at(-1);
    const tail = last !== undefined && last.offset + last.size === end ? last.size : 0;
    const currentPages = end / wasmPageBytes;
    const neededPages = Math.ceil((size - tail) / wasmPageBytes);
    const pages = Math.min(Math.max(neededPages, minGrowPages), this.maximumPages - currentPages);
    const full = (cause?: unknown) =>
      new TrainfleetError(
        Code.RESOURCE_EXHAUSTED,
        `kernel memory is full: a block of ${size} bytes does not fit in its ${this.maximumPages * wasmPageBytes} bytes (${this.#allocatedBytes} allocated); use smaller shards (more parameter-server shards)`,
        { cause },
      );
    if (pages < neededPages) throw full();
    try {
      this.memory.grow(pages);
    } catch (error) {
      // The address range is reserved, but the system may still refuse the pages.
      throw full(error);
    }
    this.#buffer = this.#currentBuffer();
    this.#release(end, pages * wasmPageBytes);
  }

  /** The memory's buffer, registered as one of ours. */
  #currentBuffer(): SharedArrayBuffer {
    const buffer = this.memory.buffer;
    this.#buffers.add(buffer);
    return buffer;
  }

  /** Adds [offset, offset + size) to the free list, merged with free neighbours. */
  #release(offset: number, size: number): void {
    if (size <= 0) return;
    const free = this.#free;
    // The first free block after `offset`.
    let low = 0;
    let high = free.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (free[middle]!.offset < offset) low = middle + 1;
      else high = middle;
    }
    const before = free[low - 1];
    const after = free[low];
    if (before !== undefined && before.offset + before.size === offset) {
      before.size += size;
      if (after !== undefined && offset + size === after.offset) {
        before.size += after.size;
        free.splice(low, 1);
      }
    } else if (after !== undefined && offset + size === after.offset) {
      after.offset = offset;
      after.size += size;
    } else free.splice(low, 0, { offset, size });
  }
}

let processMemory: KernelMemory | null | undefined;

/**
 * The process-wide kernel memory, which the WebAssembly kernels are instantiated on: the
 * one to allocate hot buffers from. Created on first use (it reserves 4 GiB of address
 * space); undefined where it cannot be (no WebAssembly threads, or no address space).
 */
export function kernelMemory(): KernelMemory | undefined {
  if (processMemory === undefined) {
    try {
      processMemory = new KernelMemory();
    } catch {
      processMemory = null;
    }
  }
  return processMemory ?? undefined;
}

/** `kernelMemory().pointer(view, from, to)`, or -1 without creating the memory when there is none yet. */
export function kernelPointer(view: KernelView, from: number, to: number): number {
  return processMemory ? processMemory.pointer(view, from, to) : -1;
}

/**
 * A zeroed Float32Array in the process-wide kernel memory, or on the ordinary heap (where
 * the kernels' JavaScript path serves it) when the kernel memory is unavailable or full.
 */
export function kernelFloat32Array(length: number): Float32Array {
  return inKernelMemory(
    (memory) => memory.float32(length),
    () => new Float32Array(length),
  );
}

/** As kernelFloat32Array, for 16-bit wire values. */
export function kernelUint16Array(length: number): Uint16Array {
  return inKernelMemory(
    (memory) => memory.uint16(length),
    () => new Uint16Array(length),
  );
}

/** Returns a view from kernelFloat32Array or kernelUint16Array to the kernel memory (a heap array is left to the GC). */
export function freeKernelArray(view: KernelView): void {
  if (processMemory?.owns(view)) processMemory.free(view);
}

function inKernelMemory<T>(allocate: (memory: KernelMemory) => T, onHeap: () => T): T {
  const memory = kernelMemory();
  if (memory !== undefined) {
    try {
      return allocate(memory);
    } catch (error) {
      if (!(error instanceof TrainfleetError && error.code === Code.RESOURCE_EXHAUSTED)) throw error;
    }
  }
  return onHeap();
}
