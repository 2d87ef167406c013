/**
 * Runs `trainfleet run` as a real child process (which starts the coordinator, the shards
 * and the workers as processes of their own) and returns what it wrote: the output, the
 * job folder and the trained parameters.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { repoPath } from "../manifests.js";

export const cliMain = repoPath("cli", "dist", "main.js");

export interface FleetResult {
  code: number | null;
  output: string;
  folder: string;
  parameters: Float32Array;
  description: { version: number; parameterCount: number };
}

export async function runFleet(flags: string[], timeoutMs = 120_000): Promise<FleetResult> {
  const jobsDir = mkdtempSync(join(tmpdir(), "trainfleet-test-"));
  const child = spawn(process.execPath, [cliMain, "run", "--jobs-dir", jobsDir, ...flags], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  const folders = readdirSync(jobsDir);
  if (folders.length !== 1) throw new Error(`expected one job folder in ${jobsDir}, found ${folders.length}; output:\n${output}`);
  const folder = join(jobsDir, folders[0]!);
  if (code !== 0) return { code, output, folder, parameters: new Float32Array(0), description: { version: -1, parameterCount: 0 } };
  const bytes = readFileSync(join(folder, "parameters.f32"));
  const parameters = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const description = JSON.parse(readFileSync(join(folder, "parameters.json"), "utf8")) as FleetResult["description"];
  return { code, output, folder, parameters, description };
}

/** A trainfleet command as a child process: its exit code, its stdout and stderr, and both as they interleaved. */
export async function trainfleet(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; output: string }> {
  const child = spawn(process.execPath, [cliMain, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    output += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
    output += chunk.toString();
  });
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr, output };
}

/** Fails unless every process that logged into the job folder (its first log line has its pid) has exited. */
export function expectAllExited(folder: string): void {
  const pids = readdirSync(folder)
    .filter((f) => f.endsWith(".log"))
    .flatMap((f) => readFileSync(join(folder, f), "utf8").split("\n").filter(Boolean).slice(0, 1))
    .map((line) => (JSON.parse(line) as { pid: number }).pid);
  expect(pids.length).toBeGreaterThan(0);
  const alive = pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
  expect(alive).toEqual([]);
}
