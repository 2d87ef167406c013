/**
 * A file on this machine (a path, or a file:// URL already turned into one): a mounted
 * PVC, the job's image, a developer's disk. Reads are positioned reads of one open handle
 * per call, so concurrent readers never share a file position.
 */
import { open, stat } from "node:fs/promises";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { checkReadArguments } from "./byte-range.js";
import type { ByteSource } from "./byte-source-interface.js";
import { cancelled } from "./retry.js";

export function createLocalSource(path: string): ByteSource {
  const failed = (error: unknown): TrainfleetError => {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return new TrainfleetError(Code.NOT_FOUND, `${path}: no such file`, { cause: error });
    if (code === "EACCES" || code === "EPERM") {
      return new TrainfleetError(Code.PERMISSION_DENIED, `${path}: permission denied. Fix: make the file readable by this process's user`, {
        cause: error,
      });
    }
    return new TrainfleetError(Code.UNAVAILABLE, `${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  };
  const size = async (signal?: AbortSignal) => {
    if (signal?.aborted) throw cancelled(path, signal);
    const info = await stat(path).catch((error: unknown) => Promise.reject(failed(error)));
    if (!info.isFile()) throw new TrainfleetError(Code.INVALID_ARGUMENT, `${path}: not a file`);
    return info.size;
  };
  const read = async (offset: number, length: number, signal?: AbortSignal) => {
    checkReadArguments(path, offset, length);
    if (signal?.aborted) throw cancelled(path, signal);
    const handle = await open(path, "r").catch((error: unknown) => Promise.reject(failed(error)));
    try {
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle
          .read(out, done, length - done, offset + done)
          .catch((error: unknown) => Promise.reject(failed(error)));
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === length ? out : out.subarray(0, done);
    } finally {
      await handle.close();
    }
  };
  return {
    uri: path,
    size,
    read,
    readAll: async (signal?: AbortSignal) => read(0, await size(signal), signal),
  };
}
