/**
 * A whole `trainfleet run` as a user starts it (`node cli/dist/main.js run --jobs-dir DIR`),
 * watched from outside while it runs: its status URL (the "status:" line it prints), its
 * job folder, the read token the folder holds, and the coordinator's process id (the "pid"
 * of the first line of coordinator.log), so that a benchmark can read the API and the
 * coordinator's memory during the job. After the run: what the job left in its folder.
 */
import type { ChildProcess } from "node:child_process";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { cliMain, readToken } from "@trainfleet/testing/fleet/run-fleet";

/** Fetches Fashion-MNIST into the place `trainfleet run` looks by default, as `npm start` does first. */
export function ensureFashionMnist(): void {
  const result = spawnSync("bash", [fileURLToPath(new URL("../../scripts/fetch-data.sh", import.meta.url)), "--quiet"], {
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`scripts/fetch-data.sh failed: ${result.stderr}`);
}

export interface RunningJob {
  child: ChildProcess;
  /** performance.now() when the process was spawned. */
  spawnedAt: number;
  jobsDir: string;
  folder: string;
  /** The job's status URL: http://HOST:PORT/v1/jobs/ID. */
  statusUrl: string;
  readToken: string;
  /** The coordinator child's process id, or undefined when its log did not say. */
  coordinatorPid: number | undefined;
  /** Resolves when `trainfleet run` has exited: its code and the wall time from spawn to exit. */
  exited: Promise<{ code: number | null; wallMs: number }>;
  output: () => string;
}

/** Starts `trainfleet run FLAGS` and resolves once it has printed the coordinator's status URL. */
export async function startJob(flags: string[], env: NodeJS.ProcessEnv = process.env): Promise<RunningJob> {
  const jobsDir = mkdtempSync(join(tmpdir(), "trainfleet-bench-job-"));
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [cliMain, "run", "--jobs-dir", jobsDir, ...flags], { stdio: ["ignore", "pipe", "pipe"], env });
  let output = "";
  const printed = new Promise<{ folder: string; statusUrl: string }>((resolve) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const folder = /^logs and results: (\S+)$/m.exec(output)?.[1];
      const statusUrl = /^status: (http\S+)/m.exec(output)?.[1];
      if (folder !== undefined && statusUrl !== undefined) resolve({ folder, statusUrl });
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
  });
  const exited = once(child, "exit").then(([code]) => ({ code: code as number | null, wallMs: performance.now() - spawnedAt }));
  const { folder, statusUrl } = await Promise.race([
    printed,
    exited.then(({ code }) => Promise.reject(new Error(`trainfleet run exited with ${code} before printing its status URL:\n${output}`))),
  ]);
  return {
    child,
    spawnedAt,
    jobsDir,
    folder,
    statusUrl,
    readToken: readToken(folder),
    coordinatorPid: coordinatorPid(folder),
    exited,
    output: () => output,
  };
}

/** The coordinator's pid from its log (every line carries it; the first is written before it listens). */
function coordinatorPid(folder: string): number | undefined {
  const first = readFileSync(join(folder, "coordinator.log"), "utf8").split("\n", 1)[0] ?? "";
  const pid = /"pid":(\d+)/.exec(first)?.[1];
  if (pid === undefined) return undefined;
  // Only if that process is still the coordinator (a pid is reused once its process is gone).
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("coordinator") ? Number(pid) : undefined;
  } catch {
    return undefined;
  }
}

/** A process's peak resident set (VmHWM of /proc/PID/status) in bytes, or undefined once it is gone. */
export function peakRssBytes(pid: number): number | undefined {
  try {
    const kib = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kib === undefined ? undefined : Number(kib) * 1024;
  } catch {
    return undefined;
  }
}

/** A process's CPU time so far (user + system, from /proc/PID/stat) in seconds, or undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    // The fields after the command name (which may hold spaces) start at its closing parenthesis.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

export interface FinishedJob {
  /** sha256 of the trained parameters.f32. */
  parametersSha256: string;
  testAccuracy: number;
  totalSteps: number;
  /** From the coordinator's "job started" to its "evaluation complete" (its log's timestamps). */
  trainAndEvalMs: number;
}

/** What a finished job left in its folder; throws, with the run's output, when it did not succeed. */
export function finishedJob(job: RunningJob, code: number | null): FinishedJob {
  if (code !== 0) throw new Error(`trainfleet run exited with ${code}; logs in ${job.folder}\n${job.output()}`);
  const lines = readFileSync(join(job.folder, "coordinator.log"), "utf8")
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { msg: string; time: number; totalSteps?: number; testAccuracy?: number });
  const started = lines.find((line) => line.msg === "job started");
  const evaluated = lines.find((line) => line.msg === "evaluation complete");
  if (started === undefined || evaluated === undefined)
    throw new Error(`coordinator.log of ${job.folder} lacks "job started" or "evaluation complete"`);
  return {
    parametersSha256: createHash("sha256")
      .update(readFileSync(join(job.folder, "parameters.f32")))
      .digest("hex"),
    testAccuracy: evaluated.testAccuracy ?? Number.NaN,
    totalSteps: started.totalSteps ?? Number.NaN,
    trainAndEvalMs: evaluated.time - started.time,
  };
}

/** Removes the run's jobs folder (each default job leaves about 1 MB of parameters and logs). */
export function removeJob(job: RunningJob): void {
  rmSync(job.jobsDir, { recursive: true, force: true });
}

/** Prints a loud line when the parameters differ between runs that must train bit for bit alike. */
export function parameterCheck(hashes: readonly string[]): string {
  const distinct = [...new Set(hashes)];
  return distinct.length === 1
    ? `parameters.f32 sha256 ${distinct[0]} in all ${hashes.length} runs (byte-identical)`
    : `MISMATCH: parameters.f32 differs between runs (${distinct.length} distinct sha256 over ${hashes.length} runs): ${hashes.join(", ")}`;
}
