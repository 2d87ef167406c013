/**
 * The names of checkpoint files in a checkpoint folder: shards write theirs, the
 * coordinator writes the manifests, indexes both and prunes old ones.
 */

/** One shard's slice of one checkpoint (paramserver/src/checkpoint-format.ts). */
export function shardCheckpointFileName(shardIndex: number, version: number): string {
  return `shard-${shardIndex}-v${version}.ckpt`;
}

/** The coordinator's manifest of one checkpoint (coordinator/src/checkpoints/checkpoint-manifest.ts). */
export function checkpointManifestFileName(version: number): string {
  return `checkpoint-${version}.json`;
}

/** Points at the newest complete checkpoint's manifest. */
export const latestCheckpointFileName = "latest.json";

/** The version a checkpoint file's name carries (a shard file or a manifest); undefined for any other name. */
export function checkpointFileVersion(name: string): number | undefined {
  const match = /^(?:shard-\d+-v(\d+)\.ckpt|checkpoint-(\d+)\.json)$/.exec(name);
  return match === null ? undefined : Number(match[1] ?? match[2]);
}
