/** Starting benchmark children (compiled siblings of this file) and reading their one IPC message. */

import type { ChildProcess } from "node:child_process";
import { fork } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

/** Set BENCH_CPU_PROF=DIR to have every benchmark child write a V8 CPU profile there. */
const profileDir = process.env.BENCH_CPU_PROF;

export function start(script: string, args: Array<string | number>): ChildProcess {
  return fork(fileURLToPath(new URL(script, import.meta.url)), args.map(String), {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    execArgv: profileDir ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : [],
  });
}

export async function message<T>(child: ChildProcess): Promise<T> {
  const [value] = (await Promise.race([
    once(child, "message"),
    once(child, "exit").then(([code]) => Promise.reject(new Error(`benchmark child exited with ${String(code)} before reporting`))),
  ])) as [T];
  return value;
}

/** Asks a server child to stop, and returns the report it sends before exiting. */
export async function finish<T>(child: ChildProcess): Promise<T> {
  const report = message<T>(child);
  child.send("stop");
  const value = await report;
  if (child.exitCode === null) await once(child, "exit");
  return value;
}
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
