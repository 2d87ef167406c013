/**
 * Issue 14: a NATS password given in `--nats-url` must not reach the coordinator's command
 * line or any log. A real nats-server that requires a user and password, and a real
 * `trainfleet run --nats-url nats://user:password@...`: the job's events arrive (the
 * credentials were used), the coordinator's /proc/PID/cmdline has no password, and no file
 * of the job folder has it but the 0600 credentials file the coordinator reads.
 */
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { connect } from "@nats-io/transport-node";
import { decodeBusMessage } from "@trainfleet/coordinator";
import { JobEventKind } from "@trainfleet/proto";
import { natsServerBinary } from "@trainfleet/testing/fixtures/nats-server";
import { cliMain } from "@trainfleet/testing/fleet/run-fleet";
import { afterAll, expect, it } from "vitest";

const user = "trainer";
// Characters a URL must percent-encode, so that decoding is tested too.
const password = `pw-${randomBytes(9).toString("hex")}+/@`;
const jobId = "nats-credentials";
const storeDir = mkdtempSync(join(tmpdir(), "trainfleet-nats-auth-"));
const jobsDir = mkdtempSync(join(tmpdir(), "trainfleet-nats-auth-jobs-"));
let server: ChildProcess | undefined;
let client: NatsConnection | undefined;

afterAll(async () => {
  await client?.close();
  server?.kill("SIGTERM");
  rmSync(storeDir, { recursive: true, force: true });
  rmSync(jobsDir, { recursive: true, force: true });
});

/** A nats-server with JetStream that takes only `user`/`password`; its nats://host:port once it says it is ready. */
async function startServer(): Promise<string> {
  const child = spawn(natsServerBinary(), ["-a", "127.0.0.1", "-p", "-1", "-js", "-sd", storeDir, "--user", user, "--pass", password], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  server = child;
  let log = "";
  return new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      const address = /Listening for client connections on (\S+)/.exec(log)?.[1];
      if (address !== undefined && log.includes("Server is ready")) resolve(`nats://${address}`);
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => reject(new Error(`nats-server exited (${code}):\n${log}`)));
  });
}

/** The pids whose parent is `parent` (from /proc/PID/stat). */
function childrenOf(parent: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parent) pids.push(Number(name));
    } catch {
      // The process ended meanwhile.
    }
  }
  return pids;
}

const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");

function filesUnder(folder: string): string[] {
  return readdirSync(folder, { recursive: true, encoding: "utf8" })
    .map((name) => join(folder, name))
    .filter((path) => statSync(path).isFile());
}

it("uses the credentials of --nats-url, and keeps them off the coordinator's command line and out of every log", async () => {
  const address = await startServer();
  client = await connect({ servers: address, user, pass: password });
  const subscription = client.subscribe(`trainfleet.jobs.${jobId}.events`);
  const url = `nats://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${address.slice("nats://".length)}`;
  const run = spawn(
    process.execPath,
    [cliMain, "run", "--jobs-dir", jobsDir, "--job-id", jobId, "--nats-url", url, "--max-steps", "4", "--eval-samples", "100"].concat([
      "--workers",
      "2",
      "--shards",
      "1",
      "--hidden",
      "8",
      "--backend",
      "cpu",
    ]),
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  run.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  run.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => run.once("exit", (code) => resolve(code)));

  const kinds: JobEventKind[] = [];
  let coordinatorArgs: string[] | undefined;
  for await (const message of subscription) {
    const decoded = decodeBusMessage(message.subject, message.data);
    if (decoded.kind !== "event") continue;
    kinds.push(decoded.event.kind);
    // The coordinator published this, so it is running: read its command line now.
    coordinatorArgs ??= childrenOf(run.pid!)
      .map(cmdline)
      .find((args) => args.includes("coordinator"));
    if (decoded.event.kind === JobEventKind.FINISHED) break;
  }
  expect(await exited, output).toBe(0);
  expect(kinds[0]).toBe(JobEventKind.SUBMITTED);
  expect(kinds.at(-1)).toBe(JobEventKind.FINISHED);

  expect(coordinatorArgs).toBeDefined();
  const args = coordinatorArgs!.join(" ");
  expect(args).toContain(`--nats-url ${address} --nats-credentials-file `);
  expect(args).not.toContain(password);
  expect(args).not.toContain(encodeURIComponent(password));

  const folder = join(jobsDir, readdirSync(jobsDir)[0]!);
  const credentials = join(folder, "nats-credentials");
  expect(statSync(credentials).mode & 0o777).toBe(0o600);
  expect(readFileSync(credentials, "utf8")).toBe(`${user}:${password}\n`);
  const others = filesUnder(folder).filter((path) => path !== credentials);
  expect(others.some((path) => path.endsWith("coordinator.log"))).toBe(true);
  for (const path of others) {
    const text = readFileSync(path, "latin1");
    expect(text.includes(password) || text.includes(encodeURIComponent(password)), path).toBe(false);
  }
  const log = others.find((path) => path.endsWith("coordinator.log"))!;
  expect(readFileSync(log, "utf8")).toContain("publishing job events to NATS");
  expect(output).not.toContain(password);
  expect(output).toContain(`events: ${address} trainfleet.jobs.${jobId}.events`);
}, 120_000);
