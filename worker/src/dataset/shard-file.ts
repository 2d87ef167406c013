/**
 * One shard file of a manifest, read by byte ranges: its footer once (checked against the
 * manifest), then any block on demand. Every range read is verified against the manifest's
 * sha256 before it is decoded, so a damaged or swapped file fails naming the file and block
 * instead of training on wrong data.
 */
import type { ByteSource, DatasetByteRange, DatasetManifest, SourceOptions } from "@trainfleet/artifacts";
import { openSource, resolveRelative, sha256Hex } from "@trainfleet/artifacts";
import { TrainfleetError } from "@trainfleet/proto";
import type { BlockColumns, ShardFormat, ShardLayout } from "./formats/shard-format.js";
import { shardDataLoss } from "./formats/shard-format.js";

export interface ShardFile {
  /** The file as errors name it. */
  readonly uri: string;
  readBlock(index: number, signal?: AbortSignal): Promise<BlockColumns>;
  /** Checks that the file has the manifest's size, and its footer the manifest's blocks and schema (two small reads). */
  check(signal?: AbortSignal): Promise<void>;
}

export interface ShardFileOptions {
  /** As given, to resolve the file's path against. */
  manifestUri: string;
  /** As errors may show it. */
  safeManifestUri: string;
  manifest: DatasetManifest;
  index: number;
  sources?: SourceOptions | undefined;
  /** Told the size of each range read from storage. */
  onRead(bytes: number): void;
}

/** Each format's reader, loaded when a file of it is first opened: a job on a built-in dataset never loads Arrow or Parquet. */
const formats: Record<DatasetManifest["fileFormat"], () => Promise<ShardFormat>> = {
  parquet: async () => (await import("./formats/parquet-shard.js")).parquetShardFormat,
  arrow: async () => (await import("./formats/arrow-shard.js")).arrowShardFormat,
};

export function openShardFile(options: ShardFileOptions): ShardFile {
  const file = options.manifest.files[options.index]!;
  const source = openSource(resolveRelative(options.manifestUri, file.path), options.sources);
  const name = `${source.uri} (files[${options.index}] of ${options.safeManifestUri})`;
  let layout: Promise<ShardLayout> | undefined;

  const readRange = async (range: DatasetByteRange, what: string, signal?: AbortSignal): Promise<Uint8Array> => {
    const bytes = await read(source, range, name, signal);
    options.onRead(bytes.length);
    if (bytes.length < range.length) {
      throw shardDataLoss(
        name,
        `the file ends before byte ${range.offset + range.length} (${what}); the manifest says it has ${file.bytes} bytes`,
      );
    }
    const digest = sha256Hex(bytes);
    if (digest !== range.sha256) {
      throw shardDataLoss(
        name,
        `${what} (bytes ${range.offset}..${range.offset + range.length}) has sha256 ${digest}, but the manifest says ${range.sha256}`,
      );
    }
    return bytes;
  };

  const openLayout = (signal?: AbortSignal): Promise<ShardLayout> => {
    if (layout !== undefined) return layout;
    const opening = Promise.all([readRange(file.footer, "the footer", signal), formats[options.manifest.fileFormat]()]).then(
      ([footer, format]) => format.openFooter(footer, file, options.manifest, name),
    );
    layout = opening;
    // A failed read (unreachable, cancelled) is tried again by the next block that needs it.
    opening.catch(() => {
      if (layout === opening) layout = undefined;
    });
    return opening;
  };

  return {
    uri: source.uri,
    async check(signal) {
      const size = await source.size(signal).catch((error: unknown) => {
        const cause = TrainfleetError.from(error);
        throw new TrainfleetError(cause.code, `shard file ${name} cannot be read: ${cause.message}`, { cause: error });
      });
      if (size !== file.bytes) throw shardDataLoss(name, `the file has ${size} bytes, the manifest says ${file.bytes}`);
      await openLayout(signal);
    },
    async readBlock(index, signal) {
      const footer = await openLayout(signal);
      const block = file.blocks[index]!;
      return footer.decodeBlock(index, await readRange(block, `block ${index}`, signal));
    },
  };
}

async function read(source: ByteSource, range: DatasetByteRange, name: string, signal?: AbortSignal): Promise<Uint8Array> {
  try {
    return await source.read(range.offset, range.length, signal);
  } catch (error) {
    const cause = TrainfleetError.from(error);
    throw new TrainfleetError(cause.code, `shard file ${name} cannot be read: ${cause.message}`, { cause: error });
  }
}
