/**
 * The `trainfleet` binary as a user meets it: help that documents flags and environment
 * variables, clear errors for bad input and missing or corrupt data, and a local fleet
 * that stops every process it started when it is interrupted.
 */
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectAllExited } from "@trainfleet/testing/fleet/expect-all-exited";
import { cliMain } from "@trainfleet/testing/fleet/run-fleet";
import { describe, expect, it } from "vitest";

function trainfleet(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const result = spawnSync(process.execPath, [cliMain, ...args], { encoding: "utf8", env, timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function emptyDir(): string {
  return mkdtempSync(join(tmpdir(), "trainfleet-cli-"));
}

describe("help", () => {
  it("lists the commands", () => {
    const { code, stdout } = trainfleet(["--help"]);
    expect(code).toBe(0);
    for (const command of ["run", "coordinator", "ps", "worker"]) expect(stdout).toMatch(new RegExp(`^  ${command} `, "m"));
  });

  it.each([
    [
      "run",
      [
        "--workers <integer>",
        "--shards <integer>",
        "--backend <auto|tensorflow|webgpu|wasm|cpu>",
        "env TRAINFLEET_BACKEND",
        "--jobs-dir <string>",
      ],
    ],
    ["coordinator", ["--listen <string>", "env TRAINFLEET_LISTEN", "--output-dir <string>", "--no-job"]],
    ["ps", ["--coordinator <string>", "env TRAINFLEET_COORDINATOR", "--shard-index <integer>", "env TRAINFLEET_SHARD_INDEX"]],
    ["worker", ["--coordinator <string>", "--data-dir <string>", "env TRAINFLEET_DATA_DIR", "--log-level <debug|info|warn|error>"]],
  ])("documents the flags and environment variables of %s", (command, expected) => {
    const { code, stdout } = trainfleet([command, "--help"]);
    expect(code).toBe(0);
    for (const text of expected) expect(stdout).toContain(text);
  });
});

describe("bad input", () => {
  it.each([
    [["run", "--workers", "0"], 'trainfleet: --workers: expected an integer of at least 1, got "0"'],
    [["run", "--lr", "fast"], 'trainfleet: --lr: expected a number, got "fast"'],
    [["run", "--model", "transformer"], 'trainfleet: --model: "transformer" is not one of mlp, cnn'],
    [["run", "--frobnicate"], "trainfleet: unknown flag --frobnicate; see --help"],
    [["run", "--job-id", "Not_A_Label"], 'trainfleet: spec.jobId: "Not_A_Label" must be a DNS label'],
    [["run", "--optimizer", "sgd", "--momentum", "1.5"], "trainfleet: spec.training.optimizer.sgd.momentum: 1.5 must be in [0, 1)"],
    [["ps", "--shard-index", "0"], "trainfleet: --coordinator is required; see --help"],
  ])("%j is refused before anything starts", (args, message) => {
    const jobsDir = emptyDir();
    const { code, stderr } = trainfleet([...args, ...(args[0] === "run" ? ["--jobs-dir", jobsDir] : [])]);
    expect(code).toBe(1);
    expect(stderr).toContain(message);
    expect(readdirSync(jobsDir)).toEqual([]);
  });

  it.each([
    ['{"training": {"epochs": 2,}}', /--spec .*spec\.json: cannot read it as JSON/],
    ['{"training": {"epocs": 2}}', /--spec .*spec\.json: not a JobSpec: .*epocs/],
    [
      '{"training": {"optimizer": {"adam": {"learningRate": 50}}}}',
      /spec\.training\.optimizer\.adam\.learningRate: 50 must be in \(0, 10\]/,
    ],
  ])("a JobSpec file %s is refused with the reason", (json, message) => {
    const specPath = join(emptyDir(), "spec.json");
    writeFileSync(specPath, json);
    const { code, stderr } = trainfleet(["run", "--spec", specPath, "--jobs-dir", emptyDir()]);
    expect(code).toBe(1);
    expect(stderr).toMatch(message);
  });

  it("an environment variable with a bad value is named as such", () => {
    const { code, stderr } = trainfleet(["worker", "--coordinator", "127.0.0.1:1"], { ...process.env, TRAINFLEET_BACKEND: "tpu" });
    expect(code).toBe(1);
    expect(stderr).toContain('TRAINFLEET_BACKEND (for --backend): "tpu" is not one of auto, tensorflow, webgpu, wasm, cpu');
  });

  it("missing data says how to get it", () => {
    const dataDir = emptyDir();
    const { code, stderr } = trainfleet(["run", "--data-dir", dataDir, "--jobs-dir", emptyDir()]);
    expect(code).toBe(1);
    expect(stderr).toContain(`Fashion-MNIST not found. Searched:\n  ${dataDir} (missing all four files)`);
    expect(stderr).toContain("run `npm run fetch-data` (no root needed)");
  });

  it("corrupt data fails the job at once with the worker's own reason (WorkerFailed), and no process is left behind", () => {
    const dataDir = emptyDir();
    for (const name of [
      "train-images-idx3-ubyte.gz",
      "train-labels-idx1-ubyte.gz",
      "t10k-images-idx3-ubyte.gz",
      "t10k-labels-idx1-ubyte.gz",
    ]) {
      writeFileSync(join(dataDir, name), "not an idx file at all");
    }
    const jobsDir = emptyDir();
    const { code, stdout } = trainfleet([
      "run",
      "--data-dir",
      dataDir,
      "--jobs-dir",
      jobsDir,
      "--workers",
      "1",
      "--shards",
      "1",
      "--lease-ms",
      "2000",
    ]);
    expect(code).toBe(1);
    // The worker reported its failure before exiting: the coordinator failed the job with it.
    expect(stdout).toMatch(/^FAILED \(WorkerFailed\): workers keep failing: 1 fatal worker failure \(DataUnavailable x1\)/m);
    expect(stdout).toMatch(/train-images-idx3-ubyte\.gz: .*re-run `npm run fetch-data`/);
    expectAllExited(join(jobsDir, readdirSync(jobsDir)[0]!));
  });
});

/** Every process of a job folder (pids from its logs) has exited. */
describe("interrupting a local fleet", () => {
  it("SIGTERM to `trainfleet run` stops every process it started and exits non-zero", async () => {
    const jobsDir = emptyDir();
    const child = spawn(process.execPath, [cliMain, "run", "--jobs-dir", jobsDir, "--epochs", "5", "--backend", "cpu"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    // Wait until training has really started: the first progress line with a step.
    await new Promise<void>((resolve) => {
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (/step [1-9]\d*\//.test(output)) resolve();
      });
    });
    child.kill("SIGTERM");
    const [code] = (await once(child, "exit")) as [number | null];
    expect(code).not.toBe(0);
    const folder = join(jobsDir, readdirSync(jobsDir)[0]!);
    expectAllExited(folder);
    const coordinatorLog = readFileSync(join(folder, "coordinator.log"), "utf8");
    expect(coordinatorLog).toContain("the coordinator was asked to stop (SIGTERM or SIGINT)");
  });
});

it("creates a job folder per run (here training the CNN) with the resolved spec next to the logs, the trained model and the job's tokens", () => {
  const jobsDir = emptyDir();
  mkdirSync(join(jobsDir, "unrelated"));
  const { code, stdout } = trainfleet([
    "run",
    "--jobs-dir",
    jobsDir,
    "--max-steps",
    "3",
    "--eval-samples",
    "100",
    "--workers",
    "1",
    "--shards",
    "1",
    "--model",
    "cnn",
    "--job-id",
    "tiny",
  ]);
  expect(code).toBe(0);
  const folder = readdirSync(jobsDir).find((f) => f.startsWith("tiny-"))!;
  // checkpoints/ holds the coordinator's state from the start (a restarted coordinator resumes from it), and the checkpoints once there are any.
  expect(readdirSync(join(jobsDir, folder)).sort()).toEqual([
    "checkpoints",
    "coordinator.log",
    "model.json",
    "parameters.f32",
    "parameters.json",
    "ps-0.log",
    "spec.json",
    "status-url",
    "status.json",
    "tls",
    "tokens",
    "weights.bin",
    "worker-0.log",
  ]);
  // The job's CA certificate and each process's certificate and key (test/security/tls-fleet.test.ts), never the CA's key.
  expect(readdirSync(join(jobsDir, folder, "tls")).sort()).toEqual([
    "ca.pem",
    "coordinator-key.pem",
    "coordinator.pem",
    "ps-0-key.pem",
    "ps-0.pem",
    "worker-0-key.pem",
    "worker-0.pem",
  ]);
  expect(readdirSync(join(jobsDir, folder, "checkpoints"))).toEqual(["coordinator-state.json"]);
  // The job's own read and control tokens for its status API (test/status/api-access.test.ts).
  expect(readdirSync(join(jobsDir, folder, "tokens")).sort()).toEqual(["control", "read"]);
  expect(JSON.parse(readFileSync(join(jobsDir, folder, "spec.json"), "utf8"))).toMatchObject({ jobId: "tiny", training: { maxSteps: 3 } });
  expect(stdout).toMatch(/^SUCCEEDED: test accuracy \d+\.\d\d% \(test loss \d+\.\d{4}\) after 3 steps; wall time/m);
});
