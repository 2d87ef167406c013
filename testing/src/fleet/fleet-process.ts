/**
 * One role of the `trainfleet` binary as a real child process, with its JSON log lines
 * read as they come, so that a test or a benchmark waits on what the process says (its
 * listening address, its registration) instead of sleeping. It notes when it was spawned
 * and when its exit was seen (`now()` of ./clock), and can copy what the process writes to
 * a file, to look at where the time went afterwards.
 */

import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { now } from "./clock.js";
import { cliMain } from "./run-fleet.js";

export interface LogLine {
  msg: string;
  [field: string]: unknown;
}

export interface FleetProcessOptions {
  /** A file that gets everything the process writes, stdout and stderr. */
  logFile?: string;
}

export class FleetProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  /** now() when it was spawned. */
  readonly startedAt = now();
  /** now() when its exit was seen here (before `exited` resolves: that waits for its output to end too). */
  exitedAt: number | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #stderr = "";
  #closed = false;
  #wake: Array<() => void> = [];

  /**
   * `wrapper` prefixes the command, e.g. `ip netns exec NS` to run the role inside a network
   * namespace; it must exec the command (not fork it), so that signals reach the role itself.
   */
  constructor(
    readonly name: string,
    args: readonly string[],
    wrapper: readonly string[] = [],
    options: FleetProcessOptions = {},
  ) {
    const command = [...wrapper, process.execPath, cliMain, ...args];
    this.child = spawn(command[0]!, command.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    const file = options.logFile === undefined ? undefined : createWriteStream(options.logFile);
    let pending = "";
    this.child.stdout!.on("data", (chunk: Buffer) => {
      file?.write(chunk);
      pending += chunk.toString();
      const complete = pending.split("\n");
      pending = complete.pop()!;
      for (const line of complete) {
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ msg: line });
        }
      }
      this.#notify();
    });
    this.child.stderr!.on("data", (chunk: Buffer) => {
      file?.write(chunk);
      this.#stderr += chunk.toString();
    });
    this.child.once("exit", () => (this.exitedAt = now()));
    // "close", not "exit": by then every line it wrote has been read, so a wait cannot miss its last words.
    this.exited = once(this.child, "close").then(([code, signal]) => {
      file?.end();
      this.#closed = true;
      this.#notify();
      return { code: code as number | null, signal: signal as NodeJS.Signals | null };
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first log line with this message (and fields that satisfy `where`), as soon as the process writes it; rejects if it exits first. */
  async log(message: string | RegExp, where: (line: LogLine) => boolean = () => true): Promise<LogLine> {
    const matches = typeof message === "string" ? (msg: string) => msg === message : (msg: string) => message.test(msg);
    return this.waitFor(`logging "${String(message)}"`, (l) => matches(l.msg) && where(l));
  }

  /** The first line from index `from` on that satisfies `predicate`, as soon as the process writes it; rejects if it exits first. */
  async waitFor(what: string, predicate: (line: LogLine) => boolean, from = 0): Promise<LogLine> {
    for (;;) {
      const line = this.lines.slice(from).find(predicate);
      if (line !== undefined) return line;
      if (this.#closed) throw new Error(`${this.name} exited before ${what}:\n${this.output()}`);
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    }
  }

  /** Its last log lines and stderr, for failure messages. */
  output(lines = 15): string {
    return `${this.lines
      .slice(-lines)
      .map((l) => JSON.stringify(l))
      .join("\n")}\n${this.#stderr}`;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = [];
    for (const resolve of wake) resolve();
  }
}

/** SIGKILLs whatever still runs and waits for every exit (cleanup after a failed test). */
export async function stopAll(processes: readonly FleetProcess[]): Promise<void> {
  for (const p of processes) p.kill("SIGKILL");
  await Promise.all(processes.map((p) => p.exited));
}

/** The processes one test file starts (`start`), and its cleanup for afterAll (`stop`): SIGKILL to whatever still runs, then every exit awaited. */
export function processGroup(): { start(name: string, args: string[]): FleetProcess; stop(): Promise<void> } {
  const processes: FleetProcess[] = [];
  return {
    start(name, args) {
      const process = new FleetProcess(name, args);
      processes.push(process);
      return process;
    },
    stop: () => stopAll(processes),
  };
}
