/**
 * One role of the `trainfleet` binary as a child process of a benchmark, with its JSON log
 * lines read as they come, each stamped with when it arrived here, so that the benchmark
 * waits on what the process says instead of sleeping. The lines also go to a file, to look
 * at where the time went afterwards. (The tests have their own: bench does not import test.)
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { now } from "./bench-clock.js";

export const cliMain = fileURLToPath(new URL("../../cli/dist/main.js", import.meta.url));

export interface LogLine {
  msg: string;
  /** Date.now() in the process when it logged (pino). */
  time: number;
  [field: string]: unknown;
}

export interface ReceivedLine {
  line: LogLine;
  /** now() here when the line arrived. */
  at: number;
}

export class FleetMember {
  readonly child: ChildProcess;
  readonly lines: ReceivedLine[] = [];
  /** now() when it was spawned. */
  readonly startedAt = now();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** now() when its exit was seen here. */
  exitedAt: number | undefined;
  #wake: Array<() => void> = [];

  constructor(
    readonly name: string,
    args: readonly string[],
    logFolder: string,
  ) {
    this.child = spawn(process.execPath, [cliMain, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const file = createWriteStream(join(logFolder, `${name}.log`));
    this.child.stderr!.pipe(file, { end: false });
    let pending = "";
    this.child.stdout!.on("data", (chunk: Buffer) => {
      const at = now();
      file.write(chunk);
      pending += chunk.toString();
      const complete = pending.split("\n");
      pending = complete.pop()!;
      for (const text of complete) {
        try {
          this.lines.push({ line: JSON.parse(text) as LogLine, at });
        } catch {
          this.lines.push({ line: { msg: text, time: 0 }, at });
        }
      }
      this.#notify();
    });
    this.exited = once(this.child, "exit").then(([code, signal]) => {
      this.exitedAt = now();
      file.end();
      this.#notify();
      return { code: code as number | null, signal: signal as NodeJS.Signals | null };
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The first log line with this message (and fields matching `where`), as soon as it comes; rejects if the process exits first. */
  async log(message: string | RegExp, where: (line: LogLine) => boolean = () => true): Promise<ReceivedLine> {
    const matches = typeof message === "string" ? (msg: string) => msg === message : (msg: string) => message.test(msg);
    for (;;) {
      const found = this.lines.find((l) => matches(l.line.msg) && where(l.line));
      if (found !== undefined) return found;
      if (!this.running) throw new Error(`${this.name} exited before logging "${String(message)}"; its last lines:\n${this.tail()}`);
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    }
  }

  tail(count = 10): string {
    return this.lines
      .slice(-count)
      .map((l) => JSON.stringify(l.line))
      .join("\n");
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
