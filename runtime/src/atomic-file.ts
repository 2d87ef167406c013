/**
 * Files written whole or not at all, and their checksums. A file goes to a temporary name
 * beside its target, is fsynced, then renamed over the target (atomic on POSIX file
 * systems), and the folder is fsynced so that the rename survives a crash too: a reader
 * sees the old file or the new one, never a torn one. Shared by the coordinator (trained
 * parameters, checkpoint manifests) and the parameter-server shards (checkpoint slices).
 */
import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";

let temporaries = 0;

/** Writes `parts`, one after the other, as the whole content of `path`. */
export async function writeAtomically(path: string, parts: Uint8Array | readonly Uint8Array[]): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}-${temporaries++}`;
  try {
    const file = await open(temporary, "w");
    try {
      // writeFile on a handle writes from the current position, so parts follow each other.
      for (const part of parts instanceof Uint8Array ? [parts] : parts) await file.writeFile(part);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  await syncFolder(dirname(path));
}

/** Makes a rename in `folder` durable. Some file systems cannot fsync a folder; the rename stands anyway. */
async function syncFolder(folder: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(folder, "r");
    await handle.sync();
  } catch {
    // EISDIR/EINVAL/EPERM on file systems without folder fsync: nothing more to do.
  } finally {
    await handle?.close();
  }
}

/** Lower-case hex sha256 of `parts` taken in order, as if they were one buffer. */
export function sha256Hex(parts: Uint8Array | readonly Uint8Array[]): string {
  const hash = createHash("sha256");
  for (const part of parts instanceof Uint8Array ? [parts] : parts) hash.update(part);
  return hash.digest("hex");
}

/** Lower-case hex sha256 of a file, read in pieces (checkpoint files can be large). */
export async function fileSha256(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  const file = await open(path, "r");
  try {
    for await (const piece of file.createReadStream({ highWaterMark: 1 << 20 })) {
      hash.update(piece as Buffer);
      bytes += (piece as Buffer).byteLength;
    }
  } finally {
    await file.close().catch(() => {});
  }
  return { sha256: hash.digest("hex"), bytes };
}
