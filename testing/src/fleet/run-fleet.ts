/**
 * Runs `trainfleet run` as a real child process (which starts the coordinator, the shards
 * and the workers as processes of their own) and returns what it wrote: the output, the
 * job folder and the trained parameters. No vitest here: benchmarks use it too (the
 * assertions on a finished job are in ./expect-all-exited). A run's coordinator needs the
 * job's tokens, which its folder holds (`readToken`).
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoPath } from "../manifests.js";

export const cliMain = repoPath("cli", "dist", "main.js");

export interface FleetResult {
  code: number | null;
  output: string;
  folder: string;
  parameters: Float32Array;
  description: { version: number; parameterCount: number };
}

/** `timeoutMs`: SIGKILL after that long (Infinity: no limit). */
export async function runFleet(flags: string[], timeoutMs = 120_000): Promise<FleetResult> {
  const jobsDir = mkdtempSync(join(tmpdir(), "trainfleet-test-"));
  const child = spawn(process.execPath, [cliMain, "run", "--jobs-dir", jobsDir, ...flags], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const timer = Number.isFinite(timeoutMs) ? setTimeout(() => child.kill("SIGKILL"), timeoutMs) : undefined;
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

/** The read (or control) token a `trainfleet run` made for its job, from its folder's tokens/. */
export function readToken(folder: string, right: "read" | "control" = "read"): string {
  return readFileSync(join(folder, "tokens", right), "utf8").trim();
}
