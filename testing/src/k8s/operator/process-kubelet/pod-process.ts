/**
 * One pod's container as the process kubelet runs it: its process, the host ports its container
 * ports listen on, its last output lines and how it ended. What the kubelet and the Service
 * forwarder read about a pod, and what tests read through `ProcessKubelet.processes`.
 */

import type { ChildProcess } from "node:child_process";
import type { V1Pod } from "@kubernetes/client-node";

export interface PodExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** What the pod status says: the exit code, or 128 + the signal's number. */
  exitCode: number;
}

/** One pod's container: its process, ports and output. */
export class PodProcess {
  readonly lines: string[] = [];
  /** Container port -> the host port it really listens on. */
  readonly ports = new Map<number, number>();
  child: ChildProcess | undefined;
  /** Why the container could not start (it never will; `exited` then says exit code -1). */
  error: string | undefined;
  /** The host file standing for its /dev/termination-log, and what the kubelet reported from it once it ended. */
  terminationLog: string | undefined;
  terminationMessage: string | undefined;
  exit: PodExit | undefined;
  /** The pod was deleted, or is being: it gets no more status writes once it is gone. */
  terminating = false;
  deleted = false;
  /** SIGTERM sent by this kubelet (the pod was deleted). */
  terminatedAt: number | undefined;
  readonly exited: Promise<PodExit>;
  #resolveExit!: (exit: PodExit) => void;
  #killTimer: NodeJS.Timeout | undefined;
  /** Status writes of this pod, in order. */
  writes: Promise<void> = Promise.resolve();

  constructor(readonly pod: V1Pod) {
    this.exited = new Promise((resolve) => (this.#resolveExit = resolve));
  }

  get name(): string {
    return this.pod.metadata!.name!;
  }

  get uid(): string {
    return this.pod.metadata!.uid!;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.exit === undefined;
  }

  recordExit(exit: PodExit): void {
    clearTimeout(this.#killTimer);
    this.exit = exit;
    this.#resolveExit(exit);
  }

  /** SIGTERM now, SIGKILL after `graceMs` if it still runs. */
  terminate(graceMs: number): void {
    if (!this.running || this.terminatedAt !== undefined) return;
    this.terminatedAt = Date.now();
    this.child!.kill("SIGTERM");
    this.#killTimer = setTimeout(() => this.child!.kill("SIGKILL"), graceMs);
  }

  /** Its last log lines, for failure messages. */
  output(lines = 30): string {
    const state =
      this.error ??
      (this.exit === undefined
        ? `running (pid ${this.pid})`
        : `exited ${this.exit.exitCode}${this.exit.signal ? ` (${this.exit.signal})` : ""}`);
    return `--- pod ${this.name} (uid ${this.uid.slice(0, 8)}): ${state}\n${this.lines.slice(-lines).join("\n")}`;
  }
}
