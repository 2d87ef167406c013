/**
 * A pod's container started as the image would run it: `node cli/dist/main.js` (the image's
 * entrypoint) with the container's args and the env the kubelet made, as a real process. Its
 * output is kept line by line for failure messages, and its end is reported as a container
 * runtime reports it: the exit code, or 128 + the signal's number when a signal ended it.
 */

import { spawn } from "node:child_process";
import { constants } from "node:os";
import { cliMain } from "../../../fleet/run-fleet.js";
import type { PodExit, PodProcess } from "./pod-process.js";

/** Log lines kept per process (the newest). */
const keptLines = 2000;

/**
 * Spawns the container's process into `process.child`; `onExit` gets its end (once its last
 * words are in `process.lines`) and the start time returned here. Returns when it started.
 */
export function spawnContainer(
  process: PodProcess,
  args: readonly string[],
  env: Record<string, string>,
  onExit: (exit: PodExit, startedAt: Date) => void,
): Date {
  const child = spawn(globalThis.process.execPath, [cliMain, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  process.child = child;
  for (const stream of [child.stdout, child.stderr]) {
    let pending = "";
    stream.on("data", (chunk: Buffer) => {
      pending += chunk.toString();
      const complete = pending.split("\n");
      pending = complete.pop()!;
      process.lines.push(...complete);
      if (process.lines.length > keptLines) process.lines.splice(0, process.lines.length - keptLines);
    });
    stream.on("end", () => pending !== "" && process.lines.push(pending));
  }
  const startedAt = new Date();
  // "close", not "exit": by then its last words are in `lines`.
  child.on("close", (code, signal) => {
    const exitCode = code ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0));
    const exit = { code, signal, exitCode };
    process.recordExit(exit);
    onExit(exit, startedAt);
  });
  child.on("error", (error) => process.lines.push(`kubelet: spawn failed: ${error.message}`));
  return startedAt;
}
