/**
 * The status server under many readers, on a real server on 127.0.0.1: 200 event streams
 * of a real coordinator share one serialisation per change (the same bytes go to each) and
 * a GET reuses it; past --max-watchers a stream is refused with 503 and Retry-After; a
 * client that stops reading is cut instead of having its events buffered.
 */
import { connect } from "node:net";
import { setImmediate } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { JobPhase, JobSpecSchema, JobStatusSchema, MemberRole, RegisterRequestSchema } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { silentLogger } from "@trainfleet/runtime";
import { resolveJobSpec } from "@trainfleet/spec";
import { afterEach, describe, expect, it } from "vitest";
import { Coordinator } from "../src/job/coordinator.js";
import { ChangeNotifier } from "../src/status/change-notifier.js";
import type { StatusApiSource, StatusHttpOptions } from "../src/status/status-http-server.js";
import { startStatusHttpServer } from "../src/status/status-http-server.js";

const token = "read-token-0123456789abcdefghijklmnopqrstuvwxyz";
const authorization = { authorization: `Bearer ${token}` };

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(source: StatusApiSource, options: Partial<StatusHttpOptions> = {}) {
  const http = await startStatusHttpServer(source, {
    listen: "127.0.0.1:0",
    logger: silentLogger,
    readiness: () => ({ ready: true, reason: "ok" }),
    tokens: { read: token },
    ...options,
  });
  cleanups.push(() => http.close(500));
  return http;
}

/** An event stream read as raw text, until it holds `count` status events. */
async function openStream(url: string) {
  const controller = new AbortController();
  cleanups.push(() => controller.abort());
  const response = await fetch(url, { headers: authorization, signal: controller.signal });
  expect(response.status).toBe(200);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const stream = {
    raw: "",
    /** The raw text of each status event received so far. */
    events: () => stream.raw.split("\n\n").filter((block) => block.includes("event: status")),
    async until(count: number) {
      while (stream.events().length < count) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended after ${stream.events().length} events`);
        stream.raw += decoder.decode(value, { stream: true });
      }
    },
  };
  return stream;
}

const metricValue = (text: string, name: string) => Number(new RegExp(`^${name}\\{job_id="unit"\\} (\\d+)$`, "m").exec(text)?.[1]);

describe("one serialisation per change", () => {
  it("sends 200 watchers the same bytes of each change, serialised once, and a GET reuses them", async () => {
    const coordinator = new Coordinator({
      spec: resolveJobSpec(create(JobSpecSchema, { jobId: "unit", workers: { replicas: 4 }, parameterServers: { shards: 1 } })),
      leaseMs: 60_000,
      logger: silentLogger,
    });
    const http = await start(coordinator, { statusMaxAgeMs: 60_000 });
    const streams = await Promise.all(Array.from({ length: 200 }, () => openStream(`${http.url}/v1/jobs/unit/watch`)));
    await Promise.all(streams.map((stream) => stream.until(1)));
    expect(http.encoder.serialisations).toBe(1);

    for (const change of [2, 3]) {
      coordinator.register(create(RegisterRequestSchema, { role: MemberRole.WORKER, host: `h${change}`, backend: "cpu" }));
      await Promise.all(streams.map((stream) => stream.until(change)));
      expect(http.encoder.serialisations).toBe(change);
      const sent = new Set(streams.map((stream) => stream.events()[change - 1]));
      expect(sent.size).toBe(1);
      expect([...sent][0]).toMatch(new RegExp(`^id: ${coordinator.revision}\nevent: status\ndata: \\{"jobId":"unit"`));
    }

    const get = await fetch(`${http.url}/v1/jobs/unit`, { headers: authorization });
    const body = await get.text();
    expect(`data: ${body.trimEnd()}`).toBe(streams[0]!.events()[2]!.split("\n")[2]);
    const metrics = await (await fetch(`${http.url}/metrics`, { headers: authorization })).text();
    expect(http.encoder.serialisations).toBe(3);
    expect(metricValue(metrics, "trainfleet_status_serialisations_total")).toBe(3);
    expect(metricValue(metrics, "trainfleet_status_watchers")).toBe(200);
    expect(metricValue(metrics, "trainfleet_status_watchers_max")).toBe(256);
  }, 30_000);
});

/** A job status source whose status is as large as asked, changed by the test. */
class LargeStatusSource implements StatusApiSource {
  readonly #changes = new ChangeNotifier();
  readonly metrics = { render: () => "" };
  constructor(readonly bytes: number) {}
  get revision() {
    return this.#changes.revision;
  }
  readonly phase = JobPhase.RUNNING;
  status() {
    return create(JobStatusSchema, { jobId: "unit", message: "x".repeat(this.bytes), step: this.#changes.revision });
  }
  changedSince(revision: number, signal: AbortSignal) {
    return this.#changes.after(revision, signal);
  }
  change() {
    this.#changes.changed();
  }
}

describe("bounds", () => {
  it("refuses a stream past --max-watchers with 503 and Retry-After", async () => {
    const http = await start(new LargeStatusSource(10), { maxWatchers: 3 });
    const open = await Promise.all([1, 2, 3].map(() => openStream(`${http.url}/v1/jobs/unit/watch`)));
    await Promise.all(open.map((stream) => stream.until(1)));
    const refused = await fetch(`${http.url}/v1/jobs/unit/watch`, { headers: authorization });
    expect([refused.status, refused.headers.get("retry-after")]).toEqual([503, "5"]);
    expect(await refused.json()).toEqual({
      code: "unavailable",
      message: "3 status streams are open, the most this coordinator serves (--max-watchers): try again later, or read GET /v1/jobs/unit",
    });
    expect([http.watchers.active, http.watchers.refused]).toEqual([3, 1]);
    // A GET is no stream: it is still served.
    expect((await fetch(`${http.url}/v1/jobs/unit`, { headers: authorization })).status).toBe(200);
  });

  it("cuts a stream whose client stopped reading, instead of buffering its events", async () => {
    let dropped!: () => void;
    const cut = new Promise<void>((resolve) => (dropped = resolve));
    const logger: Logger = {
      ...silentLogger,
      info(_fields, message) {
        if (message === "cut a status stream whose client stopped reading") dropped();
      },
    };
    const source = new LargeStatusSource(1 << 20);
    const http = await start(source, { logger, stallMs: 200 });
    const socket = connect(http.port, "127.0.0.1");
    cleanups.push(() => socket.destroy());
    socket.write(`GET /v1/jobs/unit/watch HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    // It never reads: once the kernel's buffers are full, the server's writes stop draining.
    socket.pause();
    let isCut = false;
    void cut.then(() => (isCut = true));
    // Each change is one more 1 MiB event to send; a handful fill the buffers.
    for (let changes = 0; !isCut; changes++) {
      if (changes > 100_000) throw new Error("the stream was never cut");
      source.change();
      await setImmediate();
    }
    expect(http.watchers.dropped).toBe(1);
  }, 30_000);
});
