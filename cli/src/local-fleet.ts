/**
 * The OS processes of a local fleet. Each child runs one role of this same binary with its
 * log in the job folder (which outlives it). The fleet notices a child that fails while it
 * is essential, and stops the rest with SIGTERM, then SIGKILL after a grace period. The
 * coordinator and the shards always are; a worker only until the job has started: after
 * that, its loss is the coordinator's business (a new generation, or a pause below the
 * minimum).
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
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
  readonly process: ChildProcess;
  readonly logPath: string;
  readonly exited: Promise<ChildExit>;
}

export class LocalFleet {
  readonly #children: FleetChild[] = [];
  readonly #folder: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #logSuffix: string;
  /** Resolves with the first child that exits with a non-zero code or by a signal while it is essential. */
  readonly firstFailure: Promise<ChildExit>;
  #reportFailure!: (exit: ChildExit) => void;

  /** `logSuffix` goes between a child's name and `.log` (a resumed run's logs keep the first run's). */
  constructor(folder: string, env: NodeJS.ProcessEnv, logSuffix = "") {
    this.#folder = folder;
    this.#env = env;
    this.#logSuffix = logSuffix;
    this.firstFailure = new Promise((resolve) => (this.#reportFailure = resolve));
  }

  /** `essential`: asked when the child fails, whether that stops the fleet (default: always). */
  spawn(name: string, args: string[], options: { ipc?: boolean; essential?: () => boolean } = {}): FleetChild {
    const logPath = join(this.#folder, `${name}${this.#logSuffix}.log`);
    const log = openSync(logPath, "a");
    const child = spawn(process.execPath, [mainScript, ...args], {
      stdio: ["ignore", log, log, ...(options.ipc ? (["ipc"] as const) : [])],
      env: this.#env,
      // A process group of its own: Ctrl-C in a terminal reaches `trainfleet run` only, which
      // stops the fleet in order (the coordinator checkpoints, then stops the members).
      detached: true,
    });
    closeSync(log);
    const exited = once(child, "exit").then(([code, signal]) => ({ name, code: code as number | null, signal: signal as NodeJS.Signals | null }));
    // Exiting 0 is how a member ends after Stop, which may come before the last status does.
    void exited.then((exit) => exit.code !== 0 && (options.essential?.() ?? true) && this.#reportFailure(exit));
    const entry = { name, process: child, logPath, exited };
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
    for (const child of this.#children) if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill("SIGKILL");
  }

  /** SIGTERM to every running child, SIGKILL to those still running after `graceMs`. */
  stop(graceMs: number): void {
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
