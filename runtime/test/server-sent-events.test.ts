import { describe, expect, it } from "vitest";
import { formatServerSentEvent, readServerSentEvents, ServerSentEventParser } from "../src/http/server-sent-events.js";

describe("server-sent events", () => {
  it("formats an event with its id and type, one data line per line", () => {
    expect(formatServerSentEvent({ id: "7", event: "status", data: '{"a":1}' })).toBe('id: 7\nevent: status\ndata: {"a":1}\n\n');
    expect(formatServerSentEvent({ data: "a\nb" })).toBe("data: a\ndata: b\n\n");
    expect(() => formatServerSentEvent({ id: "1\n2", data: "" })).toThrow("must be one line");
  });

  it("parses what it formats, whatever the chunking, with CRLF, LF or CR line ends", () => {
    const text = `${formatServerSentEvent({ id: "1", event: "status", data: "one" })}: keep-alive\r\n\r\nid: 2\revent: status\rdata: two\rdata:  three\r\rdata:no space\n\n`;
    for (const size of [1, 2, 3, 7, text.length]) {
      const parser = new ServerSentEventParser();
      const events = [];
      for (let i = 0; i < text.length; i += size) events.push(...parser.push(text.slice(i, i + size)));
      expect(events).toEqual([
        { id: "1", event: "status", data: "one" },
        { id: "2", event: "status", data: "two\n three" },
        // The last id carries over; no type means "message".
        { id: "2", event: "message", data: "no space" },
      ]);
    }
  });

  it("dispatches nothing for an event without data, keeps retry, and drops an unfinished event at the end", async () => {
    const parser = new ServerSentEventParser();
    expect(parser.push("id: 5\nevent: status\n\nretry: 1500\n\n")).toEqual([]);
    expect(parser.retryMs).toBe(1500);
    expect(parser.push("data: x\n\n")).toEqual([{ id: "5", event: "message", data: "x" }]);
    const body = (async function* () {
      yield new TextEncoder().encode("data: é");
      yield new TextEncoder().encode("\n\ndata: unfinished\n");
    })();
    const events = [];
    for await (const event of readServerSentEvents(body)) events.push(event);
    expect(events).toEqual([{ id: "", event: "message", data: "é" }]);
  });
});
