/**
 * The bearer tokens of a coordinator's status API and JobService as files: `trainfleet run`
 * makes a read and a control token for each job (32 random bytes, base64url) in
 * JOBFOLDER/tokens/, readable by the owner only, and hands the files (never the tokens) to
 * its coordinator; `trainfleet coordinator` and `trainfleet status` read them. A token
 * never goes on a command line or into a log; errors name the file, never what it holds.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "./flags.js";

export type TokenRight = "read" | "control";

/** Where a job folder keeps the token of `right`. */
export function jobTokenPath(folder: string, right: TokenRight): string {
  return join(folder, "tokens", right);
}

/** A new token: 32 random bytes in base64url (43 characters). */
export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * The job folder's tokens, made if the folder has none yet (a resumed job keeps its own):
 * tokens/ is 0700 and each file 0600, so only the owner can read them.
 */
export function ensureJobTokens(folder: string): Record<TokenRight, string> {
  const dir = join(folder, "tokens");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const paths = { read: jobTokenPath(folder, "read"), control: jobTokenPath(folder, "control") };
  for (const path of Object.values(paths)) {
    // "wx": never overwrite; mode applies at creation, chmod in case the umask took bits away.
    if (!existsSync(path)) writeFileSync(path, `${newToken()}\n`, { mode: 0o600, flag: "wx" });
    chmodSync(path, 0o600);
  }
  return paths;
}

/** The token in `path` (surrounding whitespace dropped); `source` names where the path came from (--token-file). */
export function readTokenFile(path: string, source: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === "ENOENT" ? `${source}: ${path}: no such file` : `${source}: cannot read ${path}: ${(error as Error).message}`,
    );
  }
  const token = text.trim();
  if (token === "") throw new UsageError(`${source}: ${path} is empty; it should hold the token on one line`);
  if (/\s/.test(token)) throw new UsageError(`${source}: ${path} holds more than one line; it should hold the token alone`);
  return token;
}

/** Whether `path` is a folder (a job folder given where a URL may be). */
export function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
