/**
 * A `trainfleet run` job's coordinator is closed to anyone without the job's tokens, and
 * open to its owner: the run makes a read and a control token in the job folder (owner-only
 * files), gives its coordinator the files (never the tokens) and prints a dashboard link
 * with the read token in its fragment; `trainfleet status` reads the job with the folder,
 * a token file or TRAINFLEET_TOKEN, and without a token fails saying how to give one; the
 * status API and gRPC refuse a caller without one; no token is ever logged. And a
 * coordinator started without tokens warns on every start, naming the flags.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, createClient, JobService } from "@trainfleet/proto";
import { memberTlsFiles, readTransportSecurity } from "@trainfleet/runtime";
import { processGroup } from "@trainfleet/testing/fleet/fleet-process";
import { cliMain, readToken } from "@trainfleet/testing/fleet/run-fleet";
import { rejection } from "@trainfleet/testing/rejection";
import { afterAll, describe, expect, it } from "vitest";

const { start, stop } = processGroup();
afterAll(() => stop());

/** A trainfleet command with extra environment variables: its exit code, stdout and stderr. */
async function trainfleet(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [cliMain, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, "close")) as [number | null];
  return { code, stdout, stderr };
}

const tokenHelp =
  "give --token-file FILE or TRAINFLEET_TOKEN (a `trainfleet run` job folder holds its read token in tokens/read), or give `trainfleet status` the job folder instead of the URL";

describe("a `trainfleet run` job", () => {
  it("is read with the job folder's tokens and refused without them; no token is logged or on a command line", async () => {
    const jobsDir = mkdtempSync(join(tmpdir(), "trainfleet-access-"));
    const flags = ["--workers", "1", "--shards", "1", "--hidden", "8", "--batch-size", "16", "--max-steps", "100000", "--job-id", "access"];
    const run = spawn(process.execPath, [cliMain, "run", "--jobs-dir", jobsDir, ...flags, "--eval-samples", "100", "--backend", "cpu"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const exited = once(run, "exit") as Promise<[number | null]>;
    const printed = await new Promise<{ url: string; dashboard: string; address: string }>((resolve, reject) => {
      run.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        const [status, dashboard, address] = [/^status: (\S+)/m, /^dashboard: (\S+)$/m, /^coordinator: (\S+)/m].map(
          (re) => re.exec(output)?.[1],
        );
        if (status !== undefined && dashboard !== undefined && address !== undefined) resolve({ url: status, dashboard, address });
      });
      run.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
      void exited.then(() => reject(new Error(`trainfleet run exited before printing its status URL:\n${output}`)));
    });
    const folder = join(jobsDir, readdirSync(jobsDir)[0]!);
    const [read, control] = [readToken(folder), readToken(folder, "control")];
    try {
      // Owner-only files of 32 random bytes in base64url, one per right.
      expect(statSync(join(folder, "tokens")).mode & 0o777).toBe(0o700);
      for (const right of ["read", "control"]) expect(statSync(join(folder, "tokens", right)).mode & 0o777).toBe(0o600);
      expect([read, control].map((token) => /^[A-Za-z0-9_-]{43}$/.test(token))).toEqual([true, true]);
      expect(read).not.toBe(control);
      const origin = new URL(printed.url).origin;
      expect(printed.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/jobs\/access$/);
      expect(output).toContain(`status: ${printed.url} (trainfleet status ${folder} --watch)\n`);
      expect(printed.dashboard).toBe(`${origin}/#token=${read}`);
      expect(readFileSync(join(folder, "status-url"), "utf8")).toBe(`${printed.url}\n`);

      // The coordinator got the files, not the tokens.
      const pid = (JSON.parse(readFileSync(join(folder, "coordinator.log"), "utf8").split("\n")[0]!) as { pid: number }).pid;
      const commandLine = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      expect(commandLine).toContain("--read-token-file");
      expect(commandLine).toContain(join(folder, "tokens", "control"));
      expect(commandLine.join(" ")).not.toContain(read);
      expect(commandLine.join(" ")).not.toContain(control);

      const byFolder = await trainfleet(["status", folder]);
      expect([byFolder.code, byFolder.stderr]).toEqual([0, ""]);
      expect(byFolder.stdout).toContain("access");
      const byFile = await trainfleet(["status", printed.url, "--token-file", join(folder, "tokens", "read"), "--json"]);
      expect(byFile.code).toBe(0);
      expect((JSON.parse(byFile.stdout) as { jobId: string }).jobId).toBe("access");
      expect((await trainfleet(["status", printed.url], { TRAINFLEET_TOKEN: control })).code).toBe(0);

      const without = await trainfleet(["status", printed.url]);
      expect([without.code, without.stdout, without.stderr]).toEqual([
        1,
        "",
        `trainfleet: the coordinator at ${origin} needs the job's read token: ${tokenHelp} (UNAUTHENTICATED)\n`,
      ]);
      const wrong = await trainfleet(["status", printed.url], { TRAINFLEET_TOKEN: `${read.slice(1)}x` });
      expect([wrong.code, wrong.stderr]).toEqual([
        1,
        `trainfleet: the coordinator at ${origin} refused the token from TRAINFLEET_TOKEN (not its read or control token): ${tokenHelp} (UNAUTHENTICATED)\n`,
      ]);

      expect((await fetch(printed.url)).status).toBe(401);
      expect((await fetch(`${origin}/metrics`)).status).toBe(401);
      expect((await fetch(printed.url, { headers: { authorization: `Bearer ${read}` } })).status).toBe(200);
      // gRPC is mutual TLS: a client of the job's CA (a member's certificate) still needs the token.
      const tls = memberTlsFiles(join(folder, "tls"), "worker-0");
      const security = await readTransportSecurity(tls, { ca: "ca", certificate: "cert", key: "key" });
      const jobs = createClient(JobService, printed.address, { security, server: { roles: ["coordinator"] } });
      try {
        expect((await rejection(jobs.getJob({}))).code).toBe(Code.UNAUTHENTICATED);
      } finally {
        jobs.close();
      }
    } finally {
      run.kill("SIGTERM");
    }
    const [code] = await exited;
    expect(code, output).toBe(143);
    // Only the dashboard link shows a token; no log of any process holds one.
    expect(output.split(read).length - 1).toBe(1);
    expect(output).not.toContain(control);
    for (const log of readdirSync(folder).filter((name) => name.endsWith(".log"))) {
      const text = readFileSync(join(folder, log), "utf8");
      expect([log, text.includes(read) || text.includes(control)]).toEqual([log, false]);
    }
  }, 120_000);
});

describe("a coordinator without tokens", () => {
  it("is open, and warns on every start naming the token flags", async () => {
    const coordinator = start("coordinator", [
      "coordinator",
      "--insecure",
      "--no-job",
      "--listen",
      "127.0.0.1:0",
      "--http-listen",
      "127.0.0.1:0",
    ]);
    const warning = await coordinator.log(/^the status API and JobService are open to anyone/);
    expect(warning.level).toBe(40);
    expect(warning.msg).toBe(
      "the status API and JobService are open to anyone who reaches them: give the coordinator --read-token-file and --control-token-file (or TRAINFLEET_READ_TOKEN and TRAINFLEET_CONTROL_TOKEN)",
    );
    const { url } = (await coordinator.log("status API listening")) as unknown as { url: string };
    expect((await fetch(`${new URL(url).origin}/metrics`)).status).toBe(200);
    coordinator.kill("SIGTERM");
    await coordinator.exited;
  });

  it("refuses a token file that holds no usable token, naming the flag", async () => {
    const dir = mkdtempSync(join(tmpdir(), "trainfleet-token-"));
    const missing = await trainfleet(["coordinator", "--insecure", "--no-job", "--read-token-file", join(dir, "none")]);
    expect([missing.code, missing.stderr]).toEqual([1, `trainfleet: --read-token-file: ${join(dir, "none")}: no such file\n`]);
    const weak = await trainfleet(["coordinator", "--insecure", "--no-job", "--http-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"], {
      TRAINFLEET_CONTROL_TOKEN: "secret",
    });
    expect([weak.code, weak.stderr]).toEqual([
      1,
      "trainfleet: TRAINFLEET_CONTROL_TOKEN: the token has 6 characters; give at least 16 (for example 32 random bytes in base64url)\n",
    ]);
    const hosts = await trainfleet(["coordinator", "--insecure", "--no-job", "--allowed-hosts", "http://example.com"]);
    expect([hosts.code, hosts.stderr]).toEqual([
      1,
      'trainfleet: --allowed-hosts: "http://example.com" is not a host name; give names alone, comma-separated (coordinator.example.com,other), without a scheme or port\n',
    ]);
  });
});
