/**
 * What every source offers, whatever the scheme behind it: the interface alone, so the
 * implementations (local, http, s3) and openSource can all name it without importing
 * each other.
 */
export interface ByteSource {
  /** The location as given, safe to log (credentials removed). */
  readonly uri: string;
  /** The total number of bytes. */
  size(signal?: AbortSignal): Promise<number>;
  /** Bytes [offset, offset + length); fewer only where the file ends. */
  read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array>;
  /** The whole file. */
  readAll(signal?: AbortSignal): Promise<Uint8Array>;
}
