/**
 * The few parts of the WebAssembly JavaScript API the kernels use, typed here: the
 * compiler's lib (ES2023, no DOM) does not declare `WebAssembly`, and declaring it
 * globally would clash with any package that does.
 */
export interface WasmMemory {
  /** A SharedArrayBuffer for a shared memory: a new, longer one after each grow. */
  readonly buffer: SharedArrayBuffer;
  /** Grows by `pages` 64 KiB pages; returns the old size in pages; throws past the maximum. */
  grow(pages: number): number;
}

interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum: number; shared: true }) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { readonly exports: Record<string, unknown> };
}

export const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** WebAssembly's page: memories grow by whole pages. */
export const wasmPageBytes = 65536;
