/**
 * A `trainfleet run` job is mutual TLS end to end by default, and issue 14's outsiders are
 * refused while it trains, with real processes: a rogue process registering as a worker
 * without a certificate, or with a worker certificate of another CA for the same job id; a
 * forged push to a shard's address, with and without such a certificate; a status read
 * without the token. The job then ends with exactly the bits of an undisturbed plaintext run
 * of the same flags (`--insecure`): TLS changes who may talk, not what is computed.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { ClientOf } from "@trainfleet/proto";
import { Code, CoordinatorService, createClient, JobPhase, MemberRole, ParameterServerService } from "@trainfleet/proto";
import { type JobCertificates, makeJobCertificates } from "@trainfleet/testing/fixtures/job-certificates";
import { firstDifference } from "@trainfleet/testing/fleet/compare-parameters";
import { cliMain, readToken, runFleet } from "@trainfleet/testing/fleet/run-fleet";
import { StatusEvents } from "@trainfleet/testing/fleet/status-events";
import { rejection } from "@trainfleet/testing/rejection";
import { afterAll, describe, expect, it } from "vitest";

const flags = ["--job-id", "tls-fleet", "--workers", "2", "--shards", "2", "--hidden", "32", "--batch-size", "32"];
const more = ["--max-steps", "300", "--eval-samples", "500", "--backend", "cpu", "--seed", "9"];

let stranger: JobCertificates | undefined;
let events: StatusEvents | undefined;
const clients: Array<{ close(): void }> = [];
afterAll(async () => {
  for (const client of clients) client.close();
  events?.close();
  await stranger?.close();
});

/** `trainfleet run` as a child, its output as it comes. */
function startRun(jobsDir: string) {
  const child = spawn(process.execPath, [cliMain, "run", "--jobs-dir", jobsDir, ...flags, ...more], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const lines: Array<() => void> = [];
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    for (const wake of lines.splice(0)) wake();
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  /** The first capture of `pattern` in the output, once it appears. */
  const line = async (pattern: RegExp): Promise<string> => {
    for (;;) {
      const match = pattern.exec(output);
      if (match !== null) return match[1]!;
      if (child.exitCode !== null) throw new Error(`run exited before ${pattern}:\n${output}`);
      await new Promise<void>((wake) => lines.push(wake));
    }
  };
  return { line, exited, output: () => output };
}

describe("a trainfleet run job under attack from outside its CA", () => {
  it("refuses every outsider while it trains, and ends bitwise equal to an undisturbed plaintext run", async () => {
    const { mkdtemp } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const jobsDir = await mkdtemp(join(tmpdir(), "tls-fleet-"));
    stranger = await makeJobCertificates("tls-fleet", [["worker", "worker-0"]]);
    const run = startRun(jobsDir);
    const coordinatorAddress = await run.line(/^coordinator: (\S+)/m);
    const statusUrl = await run.line(/^status: (\S+)/m);
    const folder = join(jobsDir, readdirSync(jobsDir)[0]!);
    events = await StatusEvents.open(`${statusUrl}/watch`, { token: readToken(folder) });
    const running = await events.waitFor("training", (s) => s.phase === JobPhase.RUNNING && s.step >= 5);
    const shardAddresses = running.status.parameterServers.map((shard) => shard.address);
    expect(shardAddresses).toHaveLength(2);

    // A rogue worker: no certificate, then another CA's worker certificate for the same job id.
    const plain = createClient(CoordinatorService, coordinatorAddress);
    const forged: ClientOf<typeof CoordinatorService> = createClient(CoordinatorService, coordinatorAddress, {
      security: stranger.security("worker-0"),
      server: { roles: ["coordinator"] },
    });
    clients.push(plain, forged);
    for (const client of [plain, forged]) {
      expect((await rejection(client.register({ role: MemberRole.WORKER, host: "rogue" }, { timeoutMs: 5_000 }))).code).toBe(
        Code.UNAVAILABLE,
      );
      expect((await rejection(client.reportFailure({ workerId: "worker-0", reason: "WorkerError" }, { timeoutMs: 5_000 }))).code).toBe(
        Code.UNAVAILABLE,
      );
    }
    // A forged push to each shard, without and with the stranger's certificate.
    for (const address of shardAddresses) {
      for (const tls of [undefined, { security: stranger.security("worker-0"), server: { roles: ["parameter-server" as const] } }]) {
        const shard = createClient(ParameterServerService, address, tls);
        clients.push(shard);
        const push = shard.push([{ jobId: "tls-fleet", generation: 1, step: 0, rank: 0, offset: 0n, data: new Uint8Array(16) }], {
          timeoutMs: 5_000,
        });
        expect((await rejection(push)).code).toBe(Code.UNAVAILABLE);
      }
    }
    // The status without the token.
    expect((await fetch(statusUrl)).status).toBe(401);

    expect(await run.exited, run.output()).toBe(0);
    await events.ended;
    const final = events.events.at(-1)!.status;
    expect(final).toMatchObject({ phase: JobPhase.SUCCEEDED, generation: 1, step: 300 });
    expect(final.workers.map((worker) => worker.host).sort()).toEqual(["worker-0", "worker-1"]);

    // Every process ran mutual TLS with its own certificate, none in plaintext; the files are the owner's only.
    const logs = readdirSync(folder).filter((name) => name.endsWith(".log"));
    expect(logs.sort()).toEqual(["coordinator.log", "ps-0.log", "ps-1.log", "worker-0.log", "worker-1.log"]);
    for (const log of logs) {
      const text = readFileSync(join(folder, log), "utf8");
      expect(text, log).toContain(`"identity":"spiffe://trainfleet/job/tls-fleet/`);
      expect(text, log).not.toContain("plaintext");
    }
    expect(statSync(join(folder, "tls")).mode & 0o777).toBe(0o700);
    for (const file of readdirSync(join(folder, "tls"))) expect(statSync(join(folder, "tls", file)).mode & 0o777, file).toBe(0o600);
    expect(readdirSync(join(folder, "tls")).some((file) => file.startsWith("ca-key"))).toBe(false);

    const trained = readFileSync(join(folder, "parameters.f32"));
    const plaintext = await runFleet([...flags, ...more, "--insecure"]);
    expect(plaintext.code, plaintext.output).toBe(0);
    expect(plaintext.output).toContain("warning: --insecure: the job's processes talk plaintext");
    expect(firstDifference(new Float32Array(trained.buffer, trained.byteOffset, trained.byteLength / 4), plaintext.parameters)).toBe(-1);
  }, 180_000);
});
