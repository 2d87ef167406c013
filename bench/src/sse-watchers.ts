/**
 * A benchmark child that holds many status event streams open at once
 * (`GET /v1/jobs/ID/watch` with the read token) and keeps every one of them reading, so
 * that the process measuring the API's latency has its event loop to itself. Told what to
 * open by one IPC message (the token never goes on a command line); reports twice: once
 * every stream has been answered or has failed ("settled"), and once every stream has
 * ended or broken ("done"). A stream that ended after the final status (the server ends
 * it then) ended normally; one that broke before that was dropped.
 */
import { Agent, request } from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";

export interface WatchOrder {
  watchUrl: string;
  token: string;
  count: number;
}

export interface WatchersSettled {
  type: "settled";
  /** Streams answered 200. */
  connected: number;
  /** Streams answered with another status, by status code. */
  refused: Record<string, number>;
  /** Streams whose request failed before an answer (error codes). */
  failed: string[];
}

export interface WatchersDone {
  type: "done";
  connected: number;
  /** Ended by the server after an event with the final phase. */
  endedWithFinal: number;
  /** Ended by the server cleanly but without a final event (should not happen). */
  endedWithoutFinal: number;
  /** Connected, then broke before the stream's end (reset, or cut by the server for not reading). */
  dropped: number;
  /** Status events each connected stream received (min, median, max). */
  events: { min: number; median: number; max: number };
  megabytes: number;
  /** This process's event-loop delay, p99 in ms: whether it kept up with its streams. */
  loopDelayP99Ms: number;
  cpuSeconds: number;
}

const eventNeedle = Buffer.from("event: status\n");
const finalNeedles = [Buffer.from('"phase":"JOB_PHASE_SUCCEEDED"'), Buffer.from('"phase":"JOB_PHASE_FAILED"')];

/** Counts a needle across chunk boundaries, keeping the few bytes that could start one. */
class NeedleCounter {
  count = 0;
  private tail = Buffer.alloc(0);
  constructor(private readonly needle: Buffer) {}
  feed(chunk: Buffer): void {
    const keep = this.needle.length - 1;
    // Occurrences that straddle the previous chunk and this one.
    this.count += occurrences(Buffer.concat([this.tail, chunk.subarray(0, keep)]), this.needle);
    this.count += occurrences(chunk, this.needle);
    this.tail = chunk.length >= keep ? Buffer.from(chunk.subarray(chunk.length - keep)) : Buffer.concat([this.tail, chunk]).subarray(-keep);
  }
}

function occurrences(haystack: Buffer, needle: Buffer): number {
  let n = 0;
  for (let at = haystack.indexOf(needle); at >= 0; at = haystack.indexOf(needle, at + needle.length)) n++;
  return n;
}

interface Stream {
  answered: boolean;
  finished: boolean;
  status?: number;
  failure?: string;
  ended: boolean;
  events: NeedleCounter;
  finals: NeedleCounter[];
  bytes: number;
}

function watch(order: WatchOrder): void {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const cpuStart = process.cpuUsage();
  // One socket per stream, none kept for reuse.
  const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  const streams: Stream[] = [];
  let settledSent = false;
  const check = () => {
    if (!settledSent && streams.every((s) => s.answered)) {
      settledSent = true;
      const refused: Record<string, number> = {};
      for (const s of streams) if (s.status !== undefined && s.status !== 200) refused[s.status] = (refused[s.status] ?? 0) + 1;
      process.send!({
        type: "settled",
        connected: streams.filter((s) => s.status === 200).length,
        refused,
        failed: streams.flatMap((s) => (s.status === undefined && s.failure !== undefined ? [s.failure] : [])),
      } satisfies WatchersSettled);
    }
    if (settledSent && streams.every((s) => s.finished)) {
      loop.disable();
      const connected = streams.filter((s) => s.status === 200);
      const events = connected.map((s) => s.events.count).sort((a, b) => a - b);
      const final = (s: Stream) => s.finals.some((f) => f.count > 0);
      const cpu = process.cpuUsage(cpuStart);
      process.send!(
        {
          type: "done",
          connected: connected.length,
          endedWithFinal: connected.filter((s) => s.ended && final(s)).length,
          endedWithoutFinal: connected.filter((s) => s.ended && !final(s)).length,
          dropped: connected.filter((s) => !s.ended).length,
          events: { min: events[0] ?? 0, median: events[Math.floor(events.length / 2)] ?? 0, max: events.at(-1) ?? 0 },
          megabytes: connected.reduce((sum, s) => sum + s.bytes, 0) / 1e6,
          loopDelayP99Ms: loop.percentile(99) / 1e6,
          cpuSeconds: (cpu.user + cpu.system) / 1e6,
        } satisfies WatchersDone,
        () => process.exit(0),
      );
    }
  };
  for (let i = 0; i < order.count; i++) {
    const stream: Stream = {
      answered: false,
      finished: false,
      ended: false,
      events: new NeedleCounter(eventNeedle),
      finals: finalNeedles.map((n) => new NeedleCounter(n)),
      bytes: 0,
    };
    streams.push(stream);
    const finish = (failure?: string) => {
      if (stream.finished) return;
      stream.finished = true;
      if (failure !== undefined) stream.failure ??= failure;
      stream.answered = true;
      check();
    };
    const req = request(
      order.watchUrl,
      { agent, headers: { authorization: `Bearer ${order.token}`, accept: "text/event-stream" } },
      (res) => {
        stream.status = res.statusCode ?? 0;
        stream.answered = true;
        if (res.statusCode !== 200) {
          res.resume();
          res.on("end", () => finish());
          res.on("error", () => finish());
        } else {
          res.on("data", (chunk: Buffer) => {
            stream.bytes += chunk.length;
            stream.events.feed(chunk);
            for (const f of stream.finals) f.feed(chunk);
          });
          res.on("end", () => {
            stream.ended = true;
            finish();
          });
          res.on("error", (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
          res.on("close", () => finish("closed before the end"));
        }
        check();
      },
    );
    req.on("error", (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
    req.end();
  }
}

process.once("message", (order: WatchOrder) => watch(order));
