/**
 * A sharded dataset as a RecordSet: a batch reads only the blocks holding its records (from
 * the cache when it can), decodes each block once into samples (through the job's module
 * when the manifest says features.decoder "module"), and copies rows out. Prefetch starts
 * those reads early; a bounded number of reads run at once.
 */
import type { LoadedDatasetManifest, SourceOptions } from "@trainfleet/artifacts";
import { featureWidth } from "@trainfleet/artifacts";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { HostBatch } from "../compute/host-batch.js";
import { createBlockCache } from "./block-cache.js";
import type { RecordDecoder } from "./record-decoder.js";
import { decodedByModule, missingDecoder } from "./record-decoder.js";
import { createRecordLocator } from "./record-locator.js";
import type { RecordSet } from "./record-set.js";
import { checkIndices, invalidIndexAt } from "./record-set.js";
import type { SampleBlock } from "./sample-block.js";
import { byteFeatureTable, sampleBlockBytes, toSamples } from "./sample-block.js";
import type { ShardFile } from "./shard-file.js";
import { openShardFile } from "./shard-file.js";

export interface ShardedRecordsOptions {
  sources?: SourceOptions | undefined;
  /** Decoded blocks kept for later batches (default 64 MiB). */
  cacheBytes?: number | undefined;
  /** Block reads in flight at once (default 8). */
  concurrentReads?: number | undefined;
  /** Required when the manifest says features.decoder "module" (see loadRecordDecoder); otherwise unused. */
  decoder?: RecordDecoder | undefined;
}

export interface ShardedRecords extends RecordSet {
  close(): void;
}

export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;

export function openShardedRecords(loaded: LoadedDatasetManifest, options: ShardedRecordsOptions = {}): ShardedRecords {
  const { manifest, uri, safeUri } = loaded;
  const decoder = decodedByModule(loaded) ? options.decoder : undefined;
  if (decodedByModule(loaded) && decoder === undefined) throw missingDecoder(loaded, "no decoder was given to read it with");
  const locator = createRecordLocator(manifest.files);
  const closed = new AbortController();
  let bytesRead = 0;
  const files: ShardFile[] = manifest.files.map((_, index) =>
    openShardFile({
      manifestUri: uri,
      safeManifestUri: safeUri,
      manifest,
      index,
      sources: options.sources,
      onRead: (bytes) => void (bytesRead += bytes),
    }),
  );
  const cache = createBlockCache<SampleBlock>({ maxBytes: options.cacheBytes ?? DEFAULT_CACHE_BYTES, sizeOf: sampleBlockBytes });
  const limit = createLimiter(options.concurrentReads ?? 8);
  const width = featureWidth(manifest);
  const labelSize = manifest.label.kind === "regression" ? manifest.label.size : 0;
  const byteTable = byteFeatureTable(manifest);

  const block = (global: number): Promise<SampleBlock> =>
    cache.get(global, () =>
      limit(async () => {
        const address = locator.blocks[global]!;
        const file = files[address.file]!;
        const columns = await file.readBlock(address.block, closed.signal);
        const where = `${file.uri}: block ${address.block}`;
        const decoded = await decoder?.decode(columns, address.records, where);
        return toSamples(columns, address.records, manifest, where, decoded);
      }),
    );

  const blocksOf = (indices: ArrayLike<number>): Map<number, Promise<SampleBlock>> => {
    const needed = new Map<number, Promise<SampleBlock>>();
    for (let i = 0; i < indices.length; i++) {
      const global = locator.blockOf(indices[i] as number);
      if (!needed.has(global)) needed.set(global, block(global));
    }
    return needed;
  };

  return {
    count: locator.count,
    get bytesRead() {
      return bytesRead;
    },
    async batch(indices, signal) {
      checkIndices(indices, locator.count);
      if (closed.signal.aborted) throw new TrainfleetError(Code.FAILED_PRECONDITION, `${safeUri}: the dataset was closed`);
      const needed = blocksOf(indices);
      const keys = [...needed.keys()];
      const loaded = await abortable(Promise.all(needed.values()), signal);
      const blocks = new Map(keys.map((key, i) => [key, loaded[i]!]));
      return gather(indices, blocks, locator, { width, labelSize, byteTable });
    },
    prefetch(indices) {
      // A bad index is the batch's to report; a prefetch only reads ahead.
      if (closed.signal.aborted || invalidIndexAt(indices, locator.count) >= 0) return;
      // Errors come back to the batch that needs the block: a failed load is not cached.
      for (const pending of blocksOf(indices).values()) pending.catch(() => {});
    },
    close() {
      closed.abort(new TrainfleetError(Code.CANCELLED, `${safeUri}: the dataset was closed`));
      cache.clear();
    },
  };
}

function gather(
  indices: ArrayLike<number>,
  blocks: Map<number, SampleBlock>,
  locator: ReturnType<typeof createRecordLocator>,
  { width, labelSize, byteTable }: { width: number; labelSize: number; byteTable: Float32Array | undefined },
): HostBatch {
  const count = indices.length;
  const x = new Float32Array(count * width);
  const labels = new Int32Array(labelSize === 0 ? count : 0);
  const targets = labelSize === 0 ? undefined : new Float32Array(count * labelSize);
  for (let i = 0; i < count; i++) {
    const index = indices[i] as number;
    const global = locator.blockOf(index);
    const block = blocks.get(global)!;
    const row = index - locator.blocks[global]!.start;
    const features = block.features.subarray(row * width, (row + 1) * width);
    if (features instanceof Float32Array) x.set(features, i * width);
    else for (let j = 0; j < width; j++) x[i * width + j] = byteTable![features[j]!]!;
    if (targets === undefined) labels[i] = block.labels[row] as number;
    else targets.set(block.targets!.subarray(row * labelSize, (row + 1) * labelSize), i * labelSize);
  }
  return targets === undefined ? { count, x, labels } : { count, x, labels, targets };
}

/** Runs at most `n` of the given tasks at once. */
function createLimiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    // A finishing task hands its slot straight to the next waiting one.
    if (running >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next === undefined) running--;
      else next();
    }
  };
}

/** `promise`, or a rejection as soon as `signal` aborts; the listener is removed either way. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(TrainfleetError.from(signal.reason, Code.CANCELLED));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(TrainfleetError.from(signal.reason, Code.CANCELLED));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
