/**
 * Every shard file of a manifest, checked where the job starts rather than where a worker
 * first reads it (perhaps deep into an epoch): each file exists with the manifest's size,
 * and its footer matches the manifest's blocks and schema. Two small reads per file, a few
 * files at a time; the blocks themselves are verified as workers read them.
 */
import type { LoadedDatasetManifest, SourceOptions } from "@trainfleet/artifacts";
import { openShardFile } from "./shard-file.js";

/** Files checked at once: enough to hide a remote store's latency, few enough not to flood it. */
const concurrency = 8;

export async function checkShardFiles(loaded: LoadedDatasetManifest, sources?: SourceOptions, signal?: AbortSignal): Promise<void> {
  const { manifest, uri, safeUri } = loaded;
  let next = 0;
  const checkNext = async (): Promise<void> => {
    for (let index = next++; index < manifest.files.length; index = next++) {
      const file = openShardFile({ manifestUri: uri, safeManifestUri: safeUri, manifest, index, sources, onRead: () => {} });
      await file.check(signal);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, manifest.files.length) }, checkNext));
}
