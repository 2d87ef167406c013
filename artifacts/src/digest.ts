/** sha256 as lower-case hex, the form users paste from `sha256sum`. */
import { createHash } from "node:crypto";

export function sha256Hex(...parts: Uint8Array[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest("hex");
}
