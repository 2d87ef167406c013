/**
 * A reader of the coordinator's status event stream for tests and benchmarks: every
 * `status` event with its id, its parsed JobStatus and when it arrived here, kept in order,
 * and a way to wait for the first event that satisfies a condition (already received or
 * still to come). The stream sends every change, though changes that come faster than it
 * writes arrive merged into one event. A coordinator with tokens (every `trainfleet run`'s)
 * needs the job's read token: `open(url, { token: readToken(folder) })`.
 */
import type { JsonValue } from "@bufbuild/protobuf";
import type { JobStatus } from "@trainfleet/proto";
import { jobStatusFromJson } from "@trainfleet/proto";
import { readServerSentEvents } from "@trainfleet/runtime";
import { now } from "./clock.js";

export interface StatusEvent {
  id: number;
  /** Its place in `events`. */
  index: number;
  status: JobStatus;
  json: JsonValue;
  /** now() of ./clock when it arrived. */
  at: number;
}

export class StatusEvents {
  readonly events: StatusEvent[] = [];
  /** Resolves when the server ends the stream. */
  readonly ended: Promise<void>;
  readonly #controller: AbortController;
  #done = false;
  #failure: unknown;
  #wake: Array<() => void> = [];

  private constructor(response: Response, controller: AbortController) {
    this.#controller = controller;
    this.ended = (async () => {
      try {
        for await (const event of readServerSentEvents(response.body as unknown as AsyncIterable<Uint8Array>)) {
          if (event.event !== "status") continue;
          const at = now();
          const json = JSON.parse(event.data) as JsonValue;
          this.events.push({ id: Number(event.id), index: this.events.length, status: jobStatusFromJson(json), json, at });
          this.#notify();
        }
      } catch (error) {
        if (!controller.signal.aborted) this.#failure = error;
      } finally {
        this.#done = true;
        this.#notify();
      }
    })();
  }

  /** Connects (the server flushes the headers at once) and starts reading; `token` goes as Authorization: Bearer. */
  static async open(url: string, options: number | { lastEventId?: number; token?: string } = {}): Promise<StatusEvents> {
    const { lastEventId, token } = typeof options === "number" ? { lastEventId: options, token: undefined } : options;
    const controller = new AbortController();
    const response = await fetch(url, {
      headers: {
        ...(lastEventId === undefined ? {} : { "last-event-id": String(lastEventId) }),
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      signal: controller.signal,
    });
    if (response.status !== 200) throw new Error(`GET ${url}: HTTP ${response.status} ${await response.text()}`);
    const type = response.headers.get("content-type");
    if (type !== "text/event-stream; charset=utf-8") throw new Error(`GET ${url}: content-type ${type}`);
    return new StatusEvents(response, controller);
  }

  get last(): StatusEvent | undefined {
    return this.events.at(-1);
  }

  /** The first event from index `from` on whose status satisfies `predicate`; rejects if the stream ends first. */
  async waitFor(what: string, predicate: (status: JobStatus) => boolean, from = 0): Promise<StatusEvent> {
    for (;;) {
      const event = this.events.slice(from).find((e) => predicate(e.status));
      if (event !== undefined) return event;
      if (this.#done)
        throw new Error(
          `the event stream ended (${String(this.#failure ?? "by the server")}) before ${what}; the last status: ${JSON.stringify(this.events.at(-1)?.json)}`,
        );
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
