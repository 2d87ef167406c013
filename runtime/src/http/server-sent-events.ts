/**
 * Server-sent events (the `text/event-stream` format of the HTML standard), both ways:
 * the coordinator formats events, `trainfleet status --watch` and the tests parse them.
 * The parser follows the standard's rules: lines end in CRLF, LF or CR; `field: value`
 * with one optional space after the colon; `data` lines are joined with LF; an event is
 * dispatched at a blank line, and only if it has data; comments start with a colon; the
 * last event id carries over to later events.
 */

export interface ServerSentEvent {
  /** The last event id seen on the stream (ids carry over), "" when none was sent. */
  id: string;
  /** The event type; "message" when the event named none. */
  event: string;
  data: string;
}

/** One event; `data` may span lines. `id` and `event` must be single-line. */
export function formatServerSentEvent(event: { id?: string; event?: string; data: string }): string {
  for (const field of [event.id, event.event]) {
    if (field !== undefined && /[\r\n]/.test(field))
      throw new Error(`a server-sent event's id and type must be one line, got ${JSON.stringify(field)}`);
  }
  const lines = [
    event.id === undefined ? undefined : `id: ${event.id}`,
    event.event === undefined ? undefined : `event: ${event.event}`,
    ...event.data.split(/\r\n|\r|\n/).map((line) => `data: ${line}`),
  ];
  return `${lines.filter((line) => line !== undefined).join("\n")}\n\n`;
}

/** A comment line: ignored by readers, it keeps proxies and idle timers from closing the stream. */
export const keepAliveComment = ": keep-alive\n\n";

export class ServerSentEventParser {
  #buffer = "";
  #data: string[] = [];
  #event = "";
  #lastEventId = "";
  /** The reconnection delay the server asked for with `retry:`, if it did. */
  retryMs: number | undefined;

  /** Feeds decoded text; returns the events it completed. */
  push(text: string): ServerSentEvent[] {
    this.#buffer += text;
    const events: ServerSentEvent[] = [];
    let start = 0;
    for (;;) {
      const end = this.#buffer.slice(start).search(/[\r\n]/);
      if (end < 0) break;
      const at = start + end;
      // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
      if (this.#buffer[at] === "\r" && at + 1 === this.#buffer.length) break;
      const line = this.#buffer.slice(start, at);
      start = at + (this.#buffer[at] === "\r" && this.#buffer[at + 1] === "\n" ? 2 : 1);
      const event = this.#line(line);
      if (event !== undefined) events.push(event);
    }
    this.#buffer = this.#buffer.slice(start);
    return events;
  }

  #line(line: string): ServerSentEvent | undefined {
    if (line === "") {
      const data = this.#data;
      const event = this.#event;
      this.#data = [];
      this.#event = "";
      return data.length === 0 ? undefined : { id: this.#lastEventId, event: event || "message", data: data.join("\n") };
    }
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.#data.push(value);
    else if (field === "event") this.#event = value;
    else if (field === "id" && !value.includes("\0")) this.#lastEventId = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
    return undefined;
  }
}

/** The events of a byte stream (a fetch response body, for example), until it ends. */
export async function* readServerSentEvents(body: AsyncIterable<Uint8Array>): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  const parser = new ServerSentEventParser();
  for await (const chunk of body) yield* parser.push(decoder.decode(chunk, { stream: true }));
  // An event not ended by a blank line when the stream ends is dropped, as the standard says.
}
