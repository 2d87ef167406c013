/**
 * A real nats-server (with JetStream) for a test: scripts/fetch-nats-server.sh fetched it
 * (or $TRAINFLEET_NATS_SERVER, or one on PATH). Tests never fetch it themselves: without it
 * they fail, saying how to get it. The server picks a free port on 127.0.0.1 (-p -1), keeps
 * its store in a temporary folder, and is stopped with a real SIGTERM.
 */
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoPath } from "./manifests.js";

let found: string | undefined;

/** nats-server's path; throws with scripts/fetch-nats-server.sh's explanation when there is none. */
export function natsServerBinary(): string {
  if (found !== undefined) return found;
  const check = spawnSync("bash", [repoPath("scripts", "fetch-nats-server.sh"), "--check", "--quiet"], { encoding: "utf8" });
  if (check.status !== 0) throw new Error(`no nats-server for the NATS events tests; run: bash scripts/fetch-nats-server.sh\n${check.stderr}`);
  found = check.stdout.trim();
  return found;
}

export class NatsServer {
  private constructor(
    readonly url: string,
    readonly process: ChildProcess,
    readonly storeDir: string,
    private readonly log: () => string,
  ) {}

  /**
   * Starts a server (on `port`, or one it picks) and resolves once it says it is ready (its
   * log, not a timer); rejects if it exits first. `jetstream: false` starts one without
   * JetStream, as a misconfigured server would be.
   */
  static async start(port = -1, options: { jetstream?: boolean } = {}): Promise<NatsServer> {
    const binary = natsServerBinary();
    const storeDir = mkdtempSync(join(tmpdir(), "trainfleet-nats-"));
    const jetstream = options.jetstream === false ? [] : ["-js", "-sd", storeDir];
    const child = spawn(binary, ["-a", "127.0.0.1", "-p", String(port), ...jetstream], { stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    const ready = new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        log += chunk.toString();
        const address = /Listening for client connections on (\S+)/.exec(log)?.[1];
        if (address !== undefined && log.includes("Server is ready")) resolve(`nats://${address}`);
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
      child.once("exit", (code, signal) => reject(new Error(`nats-server exited (${code ?? signal}) before it was ready:\n${log}`)));
      child.once("error", reject);
    });
    const url = await ready.catch((error: unknown) => {
      rmSync(storeDir, { recursive: true, force: true });
      throw error;
    });
    return new NatsServer(url, child, storeDir, () => log);
  }

  /** SIGTERM, then waits for the exit and removes the store. */
  async stop(): Promise<void> {
    if (this.process.exitCode === null && this.process.signalCode === null) {
      const exited = once(this.process, "exit");
      this.process.kill("SIGTERM");
      await exited;
    }
    rmSync(this.storeDir, { recursive: true, force: true });
  }

  output(): string {
    return this.log();
  }
}
