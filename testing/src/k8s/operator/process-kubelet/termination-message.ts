/**
 * A container's termination message, as a kubelet makes it: each container gets an empty file
 * (at its terminationMessagePath, /dev/termination-log by default) that it may write its last
 * word to; when it has ended, the file's content (at most 4096 bytes) becomes
 * containerStatuses[].state.terminated.message. With terminationMessagePolicy
 * FallbackToLogsOnError, an empty file of a container that failed gives way to the tail of its
 * log (the last 80 lines, at most 2048 bytes). A local process cannot see /dev/termination-log,
 * so the file is one of this host's and the process is told where through the env var trainfleet
 * reads for it (TRAINFLEET_TERMINATION_MESSAGE_FILE, its --termination-message-file flag).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { V1Container } from "@kubernetes/client-node";

/** The env var that points trainfleet at the file (else it looks for /dev/termination-log). */
export const terminationMessageEnv = "TRAINFLEET_TERMINATION_MESSAGE_FILE";

const fileLimitBytes = 4096;
const logLines = 80;
const logLimitBytes = 2048;

/** Makes the container's empty termination-log file in `folder`; returns its path. */
export function createTerminationLog(folder: string): string {
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  const path = join(folder, "termination-log");
  writeFileSync(path, "");
  return path;
}

/** The message of a container that ended with `exitCode`, from its file, else (FallbackToLogsOnError, failed) its log. */
export function terminationMessage(
  container: V1Container,
  path: string | undefined,
  exitCode: number,
  lines: readonly string[],
): string | undefined {
  const written = path === undefined ? "" : readPrefix(path, fileLimitBytes);
  if (written !== "") return written;
  if (container.terminationMessagePolicy !== "FallbackToLogsOnError" || exitCode === 0) return undefined;
  const tail = Buffer.from(lines.slice(-logLines).join("\n"));
  return tail.length === 0 ? undefined : tail.subarray(Math.max(0, tail.length - logLimitBytes)).toString("utf8");
}

function readPrefix(path: string, limit: number): string {
  try {
    return readFileSync(path).subarray(0, limit).toString("utf8");
  } catch {
    return "";
  }
}
