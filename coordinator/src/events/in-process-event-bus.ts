/**
 * The event bus without NATS: the same interface, in memory. It keeps a bounded history,
 * so a late subscriber replays it first (as a JetStream ordered consumer would), then follows.
 */

import type { JobEvent, StepMetrics } from "@trainfleet/proto";
import { AsyncQueue } from "@trainfleet/runtime";
import type { EventBus } from "./event-bus.js";
import type { BusMessage } from "./event-subjects.js";
import { eventMessage, metricsMessage } from "./event-subjects.js";

export interface InProcessSubscribeOptions {
  /** Only this job's messages. */
  jobId?: string;
  /** Replay the kept history first. */
  fromStart?: boolean;
}

export class InProcessEventBus implements EventBus {
  readonly #history: BusMessage[] = [];
  readonly #maxHistory: number;
  readonly #subscribers = new Set<AsyncQueue<BusMessage>>();
  #closed = false;

  /** maxHistory: messages kept for late subscribers (the oldest go first). */
  constructor(maxHistory = 10_000) {
    this.#maxHistory = maxHistory;
  }

  publishEvent(event: JobEvent): void {
    this.#publish(eventMessage(event));
  }

  publishMetrics(metrics: StepMetrics): void {
    this.#publish(metricsMessage(metrics));
  }

  /**
   * Messages as they are published (after the history, with fromStart) until close() or
   * abort. Iterate it once: it stops receiving when that iteration ends.
   */
  subscribe(options: InProcessSubscribeOptions, signal: AbortSignal): AsyncIterable<BusMessage> {
    const queue = new AsyncQueue<BusMessage>();
    const wanted = (message: BusMessage) => options.jobId === undefined || jobOf(message) === options.jobId;
    if (options.fromStart === true) for (const message of this.#history) if (wanted(message)) queue.push(message);
    if (this.#closed) queue.close();
    // Registered now, so nothing published before the first read is missed.
    const subscribers = this.#subscribers.add(queue);
    return {
      async *[Symbol.asyncIterator]() {
        try {
          for await (const message of queue.read(signal)) {
            if (signal.aborted) return;
            if (wanted(message)) yield message;
          }
        } finally {
          subscribers.delete(queue);
        }
      },
    };
  }

  get history(): readonly BusMessage[] {
    return this.#history;
  }

  close(): Promise<void> {
    this.#closed = true;
    for (const queue of this.#subscribers) queue.close();
    return Promise.resolve();
  }

  #publish(message: BusMessage): void {
    if (this.#closed) return;
    this.#history.push(message);
    if (this.#history.length > this.#maxHistory) this.#history.shift();
    for (const queue of this.#subscribers) queue.push(message);
  }
}

function jobOf(message: BusMessage): string {
  return message.kind === "event" ? message.event.jobId : message.metrics.jobId;
}
