/**
 * The TLS flags of `trainfleet coordinator`, `ps` and `worker`, run as the built binary (node
 * cli/dist/main.js, a child process): all three files or none, each wrong file named with
 * its flag before anything starts; no flag at all is refused, naming the flags and
 * --insecure; plaintext only with --insecure (or TRAINFLEET_INSECURE), and then a warning
 * that names the flags on every start; with the member's three files the shard serves over
 * mutual TLS.
 */
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { spawn } from "node:child_process";
import { once } from "node:events";
import type { JobCertificates } from "@trainfleet/testing/fixtures/job-certificates";
import { makeJobCertificates } from "@trainfleet/testing/fixtures/job-certificates";
import { repoPath } from "@trainfleet/testing/manifests";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const cliMain = repoPath("cli", "dist", "main.js");
/** Nothing listens there: a process that gets as far as registering keeps retrying until stopped. */
const nowhere = "127.0.0.1:1";

let job: JobCertificates;
let stranger: JobCertificates;
beforeAll(async () => {
  job = await makeJobCertificates("job-a", [
    ["parameter-server", "ps-0"],
    ["worker", "worker-0"],
  ]);
  stranger = await makeJobCertificates("job-a", [["worker", "worker-0"]]);
});
afterAll(async () => {
  await job?.close();
  await stranger?.close();
});

function start(args: string[], env: Record<string, string> = {}): ChildProcessWithoutNullStreams {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const name of Object.keys(childEnv)) if (name.startsWith("TRAINFLEET_") && !(name in env)) delete childEnv[name];
  return spawn(process.execPath, [cliMain, ...args], { env: childEnv });
}

/** Runs the CLI to its end (at most 30 s; a member that started keeps running, so it is killed: code null). */
async function trainfleet(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = start(args, env);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const [code] = (await once(child, "close")) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** The JSON log lines of a running CLI until one says `until`; then it is stopped with SIGTERM and waited for. */
async function logUntil(
  args: string[],
  until: string,
  env: Record<string, string> = {},
): Promise<{ lines: Array<Record<string, unknown>> }> {
  const child = start(args, env);
  const lines: Array<Record<string, unknown>> = [];
  let buffered = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, "exit") as Promise<[number | null]>;
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const complete = buffered.split("\n");
      buffered = complete.pop()!;
      for (const line of complete) {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        lines.push(parsed);
        if (parsed.msg === until) resolve();
      }
    });
    void exited.then(([code]) => reject(new Error(`exited ${code} before logging "${until}": ${stderr}`)));
  });
  child.kill("SIGTERM");
  await exited;
  clearTimeout(timer);
  return { lines };
}

const plaintextWarning =
  "--insecure: plaintext, connections are neither encrypted nor authenticated; give --tls-ca, --tls-cert and --tls-key (the job's CA, this member's certificate and key) for mutual TLS";

const members = [
  ["coordinator", ["--no-job", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"]],
  ["ps", ["--coordinator", nowhere, "--shard-index", "0"]],
  ["worker", ["--coordinator", nowhere]],
] as const;

describe("trainfleet coordinator, ps and worker TLS flags", () => {
  it.each(members)(
    "%s with no TLS flag and no --insecure exits 1 naming the flags and --insecure, before it listens",
    async (command, more) => {
      for (const env of [{}, { TRAINFLEET_INSECURE: "false" }]) {
        const { code, stdout, stderr } = await trainfleet([command, ...more], env);
        expect([code, stderr]).toEqual([
          1,
          "trainfleet: no TLS credentials: give --tls-ca, --tls-cert and --tls-key (the job's CA, this member's certificate and key; `trainfleet run` and the operator make them), or --insecure for plaintext on purpose\n",
        ]);
        // Not a line logged: it stopped before anything listened or dialled.
        expect(stdout).toBe("");
      }
    },
  );

  it.each([
    ["ps", ["--shard-index", "0"]],
    ["worker", []],
  ])("%s with only --tls-cert exits 1 naming --tls-ca and --tls-key", async (command, more) => {
    const { code, stderr } = await trainfleet([
      command,
      "--coordinator",
      nowhere,
      ...more,
      "--tls-cert",
      job.files("worker-0").certificate,
    ]);
    expect(code).toBe(1);
    expect(stderr).toBe(
      "trainfleet: --tls-cert given without --tls-ca and --tls-key: give all three (the job's CA, this member's certificate and its key), or none\n",
    );
  });

  it("exits 1 naming the file when the files do not belong together", async () => {
    const mine = job.files("worker-0");
    const theirs = stranger.files("worker-0");
    const tls = (files: typeof mine) => ["--tls-ca", files.ca, "--tls-cert", files.certificate, "--tls-key", files.key];
    const otherCa = await trainfleet(["worker", "--coordinator", nowhere, ...tls({ ...mine, ca: theirs.ca })]);
    expect([otherCa.code, otherCa.stderr]).toEqual([
      1,
      `trainfleet: --tls-cert ${mine.certificate}: was not issued by the CA in ${theirs.ca}: give the certificate and the CA of the same job\n`,
    ]);
    const otherKey = await trainfleet([
      "ps",
      "--coordinator",
      nowhere,
      "--shard-index",
      "0",
      ...tls({ ...job.files("ps-0"), key: mine.key }),
    ]);
    expect([otherKey.code, otherKey.stderr]).toEqual([
      1,
      `trainfleet: --tls-key ${mine.key}: is not the key of the certificate in ${job.files("ps-0").certificate}\n`,
    ]);
  });

  it("exits 1 naming the certificate when it is not this member's", async () => {
    const tls = (name: string) => [
      "--tls-ca",
      job.files(name).ca,
      "--tls-cert",
      job.files(name).certificate,
      "--tls-key",
      job.files(name).key,
    ];
    const worker = await trainfleet(["ps", "--coordinator", nowhere, "--shard-index", "0", ...tls("worker-0")]);
    expect([worker.code, worker.stderr]).toEqual([
      1,
      `trainfleet: --tls-cert ${job.files("worker-0").certificate}: this process cannot use it: its certificate is a worker's (worker-0), and this needs a parameter-server; give the certificate issued for it\n`,
    ]);
    const otherShard = await trainfleet(["ps", "--coordinator", nowhere, "--shard-index", "1", ...tls("ps-0")]);
    expect(otherShard.stderr).toMatch(
      /--tls-cert .*ps-0\.pem: this process cannot use it: its certificate is parameter-server ps-0's, not ps-1's/,
    );
    const shardAsWorker = await trainfleet(["worker", "--coordinator", nowhere, ...tls("ps-0")]);
    expect(shardAsWorker.stderr).toMatch(/its certificate is a parameter-server's \(ps-0\), and this needs a worker/);
    // A colocated shard over TLS needs a certificate of its own.
    const colocated = await trainfleet(["worker", "--coordinator", nowhere, "--colocated-shard-index", "0", ...tls("worker-0")]);
    expect([colocated.code, colocated.stderr]).toEqual([
      1,
      "trainfleet: --colocated-shard-index over mutual TLS needs the shard's own certificate (parameter-server ps-0): give --colocated-tls-cert and --colocated-tls-key\n",
    ]);
  });

  it("exits 1 when --insecure contradicts a TLS flag", async () => {
    const { code, stderr } = await trainfleet(["worker", "--coordinator", nowhere, "--insecure", "--tls-ca", job.files("ps-0").ca]);
    expect([code, stderr]).toEqual([
      1,
      "trainfleet: --insecure contradicts --tls-ca: give --tls-ca, --tls-cert and --tls-key, or --insecure\n",
    ]);
  });

  it("runs in plaintext with a warning naming the flags, with --insecure or as TRAINFLEET_INSECURE", async () => {
    for (const [args, env] of [
      [["--insecure"], {}],
      // "true" is what the operator sets on a spec.security.insecure pod.
      [[], { TRAINFLEET_INSECURE: "true" }],
      [[], { TRAINFLEET_INSECURE: "1" }],
    ] as const) {
      const { lines } = await logUntil(
        ["ps", "--coordinator", nowhere, "--shard-index", "0", ...args],
        "parameter-server shard listening",
        env,
      );
      const warnings = lines.filter((line) => line.msg === plaintextWarning);
      expect(warnings).toEqual([expect.objectContaining({ level: 40, insecure: true })]);
      expect(lines.find((line) => line.msg === "parameter-server shard listening")).toMatchObject({ tls: "off" });
    }
  });

  it("serves over mutual TLS with the three files of its member", async () => {
    const files = job.files("ps-0");
    const { lines } = await logUntil(
      ["ps", "--coordinator", nowhere, "--shard-index", "0", "--tls-ca", files.ca, "--tls-cert", files.certificate, "--tls-key", files.key],
      "parameter-server shard listening",
    );
    expect(lines.filter((line) => line.msg === plaintextWarning)).toEqual([]);
    expect(lines.find((line) => line.msg === "mutual TLS with the job's CA")).toMatchObject({
      identity: "spiffe://trainfleet/job/job-a/parameter-server/ps-0",
    });
    expect(lines.find((line) => line.msg === "parameter-server shard listening")).toMatchObject({ tls: "mutual" });
  });
});
