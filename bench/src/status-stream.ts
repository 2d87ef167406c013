/**
 * The coordinator's status event stream (GET /v1/jobs/JOB/watch), read by a benchmark:
 * every `status` event kept in order with when it arrived here, and a way to wait for the
 * first one from some index on that satisfies a condition. The stream sends every change,
 * though changes that come faster than it writes arrive merged into one event.
 *
 * The request goes without keep-alive (node:http with no agent), so that the connection
 * closes with the stream: a kept-alive idle connection (fetch keeps one for 4 s) holds a
 * stopping coordinator's HTTP server open, and its exit, until it goes.
 */
import { get } from "node:http";
import type { IncomingMessage } from "node:http";
import { once } from "node:events";
import { jobStatusFromJson } from "@trainfleet/proto";
import { readServerSentEvents } from "@trainfleet/runtime";
import type { JobStatus } from "@trainfleet/proto";
import { now } from "./bench-clock.js";

export interface TimedStatus {
  index: number;
  status: JobStatus;
  /** now() when the event arrived. */
  at: number;
}

export class StatusStream {
  readonly events: TimedStatus[] = [];
  readonly ended: Promise<void>;
  readonly #controller: AbortController;
  #done = false;
  #wake: Array<() => void> = [];

  private constructor(response: IncomingMessage, controller: AbortController) {
    this.#controller = controller;
    this.ended = (async () => {
      try {
        for await (const event of readServerSentEvents(response)) {
          if (event.event !== "status") continue;
          const at = now();
          this.events.push({ index: this.events.length, status: jobStatusFromJson(JSON.parse(event.data) as Parameters<typeof jobStatusFromJson>[0]), at });
          this.#notify();
        }
      } catch {
        // The coordinator went away (a SIGTERM'd one closes the stream): the stream has ended.
      } finally {
        this.#done = true;
        this.#notify();
      }
    })();
  }

  static async open(url: string): Promise<StatusStream> {
    const controller = new AbortController();
    const request = get(url, { agent: false, signal: controller.signal });
    const [response] = (await once(request, "response")) as [IncomingMessage];
    if (response.statusCode !== 200) throw new Error(`GET ${url}: HTTP ${response.statusCode}`);
    return new StatusStream(response, controller);
  }

  get last(): TimedStatus | undefined {
    return this.events.at(-1);
  }

  /** The first event from index `from` on whose status satisfies `predicate`; rejects if the stream ends first. */
  async waitFor(what: string, predicate: (status: JobStatus) => boolean, from = 0): Promise<TimedStatus> {
    for (;;) {
      for (; from < this.events.length; from++) if (predicate(this.events[from]!.status)) return this.events[from]!;
      if (this.#done) throw new Error(`the status stream ended before ${what}; the last status: ${this.last?.status.reason} ${this.last?.status.message}`);
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    }
  }

  close(): void {
    this.#controller.abort();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = [];
    for (const resolve of wake) resolve();
  }
}
