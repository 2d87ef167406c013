/**
 * Where a user's file lies, read the same way whatever it is: a local path, or an
 * http(s):// or s3:// URL. Readers ask for byte ranges, so a worker reads only the blocks
 * it needs; a whole read is one range. Errors name the file, never its credentials.
 */
import { isAbsolute, posix, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { ByteSource } from "./byte-source-interface.js";
import { createHttpSource } from "./http-source.js";
import { createLocalSource } from "./local-source.js";
import { createS3Source, parseS3Uri } from "./s3-source.js";
import { redactUri } from "./safe-uri.js";
import { resolveSourceOptions, type SourceOptions } from "./source-options.js";

export type { S3Credentials, S3SourceOptions, SourceOptions } from "./source-options.js";
export type { ByteSource };

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

export function openSource(uri: string, options: SourceOptions = {}): ByteSource {
  const scheme = SCHEME.exec(uri)?.[1]?.toLowerCase();
  if (scheme === undefined) return createLocalSource(uri);
  if (scheme === "file") return createLocalSource(fileURLToPath(uri));
  if (scheme === "http" || scheme === "https") {
    if (!URL.canParse(uri)) throw new TrainfleetError(Code.INVALID_ARGUMENT, `${redactUri(uri)}: not a valid URL`);
    return createHttpSource(uri, resolveSourceOptions(options));
  }
  if (scheme === "s3") return createS3Source(uri, resolveSourceOptions(options));
  throw new TrainfleetError(
    Code.INVALID_ARGUMENT,
    `${redactUri(uri)}: unsupported scheme "${scheme}://"; give a local path, an http(s):// or an s3:// URL`,
  );
}

/**
 * `relative` (as a manifest names a file) against the location of the file that names it:
 * a sibling path for local files, a URL resolution for http(s) URLs (credentials in the
 * base carry over), a sibling key in the same bucket for s3:// URLs. A URL is kept as it
 * is; so is an absolute path next to a local base (next to a URL it means the same
 * server's or bucket's root, never a file on the reading machine).
 */
export function resolveRelative(baseUri: string, relative: string): string {
  if (SCHEME.test(relative)) return relative;
  const baseScheme = SCHEME.exec(baseUri)?.[1]?.toLowerCase();
  if (baseScheme === "s3") {
    const { bucket, key } = parseS3Uri(baseUri);
    const joined = posix.normalize(relative.startsWith("/") ? relative.slice(1) : posix.join(posix.dirname(key), relative));
    if (joined === "." || joined === ".." || joined.startsWith("../") || joined.endsWith("/")) {
      throw new TrainfleetError(Code.INVALID_ARGUMENT, `${baseUri}: "${relative}" does not name a file inside bucket "${bucket}"`);
    }
    return `s3://${bucket}/${joined}`;
  }
  if (baseScheme !== undefined) return new URL(relative, baseUri).toString();
  if (isAbsolute(relative)) return relative;
  return resolve(baseUri, "..", relative);
}
