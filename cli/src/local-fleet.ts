/**
 * The OS processes of a local fleet. Each child runs one role of this same binary with its
 * log in the job folder (which outlives it). The fleet notices a child that fails while it
 * is essential, and stops the rest with SIGTERM, then SIGKILL after a grace period. The
 * coordinator and the shards always are; a worker only until the job has started: after
 * that, its loss is the coordinator's business (a new generation, or a pause below the
 * minimum).
 *
 * Like a pod's restart policy, a child killed by a signal the fleet did not send (SIGKILL,
 * the OOM killer, a crash) is started again, a few times at most: a restarted coordinator
 * resumes the job from its saved state, a restarted shard sends the job back to its
 * checkpoint, a restarted worker joins the next generation. Exit codes are not restarts:
 * they are answers (a failed job, a bad flag).
 */

import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const mainScript = fileURLToPath(new URL("./main.js", import.meta.url));

export interface ChildExit {
  name: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface FleetChild {
  readonly name: string;
  /** The running incarnation (a restart replaces it). */
  readonly process: ChildProcess;
  readonly logPath: string;
  /** The exit of the last incarnation: one not restarted. */
  readonly exited: Promise<ChildExit>;
}

export interface SpawnOptions {
  ipc?: boolean;
  /** Asked when the child fails, whether that stops the fleet (default: always). */
  essential?: () => boolean;
  /** Start the child again, with these arguments, when a signal kills it (at most `restarts` times in all). */
  restartArgs?: () => string[];
}

/** How many times a child is started again after being killed. */
export const restarts = 3;

export class LocalFleet {
  readonly #children: FleetChild[] = [];
  readonly #folder: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #logSuffix: string;
  /** Resolves with the first child that exits with a non-zero code or by a signal while it is essential. */
  readonly firstFailure: Promise<ChildExit>;
  #reportFailure!: (exit: ChildExit) => void;
  /** Stopping (SIGTERM or SIGKILL from us): nothing is started again. */
  #stopping = false;
  /** Told of each restart: the exit it answers and which restart it is. */
  onRestart: ((exit: ChildExit, restart: number) => void) | undefined;

  /** `logSuffix` goes between a child's name and `.log` (a resumed run's logs keep the first run's). */
  constructor(folder: string, env: NodeJS.ProcessEnv, logSuffix = "") {
    this.#folder = folder;
    this.#env = env;
    this.#logSuffix = logSuffix;
    this.firstFailure = new Promise((resolve) => (this.#reportFailure = resolve));
  }

  spawn(name: string, args: string[], options: SpawnOptions = {}): FleetChild {
    const logPath = join(this.#folder, `${name}${this.#logSuffix}.log`);
    const start = (argv: string[]): ChildProcess => {
      const log = openSync(logPath, "a");
      // Node's own flags given to `trainfleet run` (--cpu-prof, --max-old-space-size...) reach every process of the fleet.
      const child = spawn(process.execPath, [...process.execArgv, mainScript, ...argv], {
        stdio: ["ignore", log, log, ...(options.ipc ? (["ipc"] as const) : [])],
        env: this.#env,
        // A process group of its own: Ctrl-C in a terminal reaches `trainfleet run` only, which
        // stops the fleet in order (the coordinator checkpoints, then stops the members).
        detached: true,
      });
      closeSync(log);
      return child;
    };
    const entry = { name, process: start(args), logPath, exited: undefined as unknown as Promise<ChildExit> };
    entry.exited = (async () => {
      for (let restart = 1; ; restart++) {
        const [code, signal] = (await once(entry.process, "exit")) as [number | null, NodeJS.Signals | null];
        const exit = { name, code, signal };
        const killed = signal !== null && signal !== "SIGTERM" && signal !== "SIGINT";
        if (!killed || this.#stopping || options.restartArgs === undefined || restart > restarts) return exit;
        this.onRestart?.(exit, restart);
        entry.process = start(options.restartArgs());
      }
    })();
    // Exiting 0 is how a member ends after Stop, which may come before the last status does.
    void entry.exited.then((exit) => exit.code !== 0 && (options.essential?.() ?? true) && this.#reportFailure(exit));
    this.#children.push(entry);
    return entry;
  }

  get children(): readonly FleetChild[] {
    return this.#children;
  }

  /** Waits for every child; those still running after `graceMs` get SIGTERM, then SIGKILL. */
  async waitAll(graceMs: number): Promise<ChildExit[]> {
    const all = Promise.all(this.#children.map((c) => c.exited));
    const timer = setTimeout(() => this.stop(graceMs), graceMs);
    try {
      return await all;
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL to every running child, at once (the children have process groups of their own, so nothing else reaches them). */
  kill(): void {
    this.#stopping = true;
    for (const child of this.#children)
      if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill("SIGKILL");
  }

  /** SIGTERM to every running child, SIGKILL to those still running after `graceMs`. */
  stop(graceMs: number): void {
    this.#stopping = true;
    const running = this.#children.filter((c) => c.process.exitCode === null && c.process.signalCode === null);
    for (const child of running) child.process.kill("SIGTERM");
    const timer = setTimeout(() => {
      for (const child of running) if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill("SIGKILL");
    }, graceMs);
    timer.unref();
  }
}

/** The last lines of a child's log, to show next to an error. */
export function logTail(path: string, lines = 8): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}
