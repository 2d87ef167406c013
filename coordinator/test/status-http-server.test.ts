/**
 * The HTTP status API against an in-process coordinator on a real server on 127.0.0.1:
 * routes and their errors, health and readiness, the event stream's format, keep-alive
 * comments, Last-Event-ID, and that gRPC WatchJob sends the same statuses.
 */

import type { JsonValue } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import type { RunningServer } from "@trainfleet/proto";
import {
  createClient,
  JobPhase,
  JobService,
  JobSpecSchema,
  jobStatusFromJson,
  jobStatusToJson,
  MemberRole,
  RegisterRequestSchema,
  WorkerState,
} from "@trainfleet/proto";
import type { RunningHttpServer, ServerSentEvent } from "@trainfleet/runtime";
import { ServerSentEventParser, silentLogger } from "@trainfleet/runtime";
import { resolveJobSpec } from "@trainfleet/spec";
import { afterEach, describe, expect, it } from "vitest";
import { Coordinator } from "../src/job/coordinator.js";
import { startCoordinatorServer } from "../src/server/coordinator-server.js";
import { startStatusHttpServer } from "../src/status/status-http-server.js";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start() {
  const coordinator = new Coordinator({
    spec: resolveJobSpec(create(JobSpecSchema, { jobId: "unit", workers: { replicas: 1 }, parameterServers: { shards: 1 } })),
    leaseMs: 60_000,
    logger: silentLogger,
  });
  const readiness = { ready: true };
  const http: RunningHttpServer = await startStatusHttpServer(coordinator, {
    listen: "127.0.0.1:0",
    logger: silentLogger,
    keepAliveMs: 50,
    readiness: () => (readiness.ready ? { ready: true, reason: "ok" } : { ready: false, reason: "not yet" }),
  });
  cleanups.push(() => http.close(500));
  return { coordinator, readiness, url: http.url };
}

/** An event stream, read as raw text (to see comments) and as parsed events. */
async function openStream(url: string, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  cleanups.push(() => controller.abort());
  const response = await fetch(url, { headers, signal: controller.signal });
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const parser = new ServerSentEventParser();
  const stream = { response, raw: "", events: [] as ServerSentEvent[], ended: false };
  /** Reads until `done` holds; false if the stream ended first. */
  const readUntil = async (done: () => boolean): Promise<boolean> => {
    while (!done()) {
      if (stream.ended) return false;
      const { value, done: end } = await reader.read();
      if (end) stream.ended = true;
      else {
        const text = decoder.decode(value, { stream: true });
        stream.raw += text;
        stream.events.push(...parser.push(text));
      }
    }
    return true;
  };
  return { stream, readUntil };
}

const statusOf = (event: ServerSentEvent) => jobStatusFromJson(JSON.parse(event.data) as JsonValue);

describe("the HTTP status API", () => {
  it("serves the job's status as proto JSON with every field, and names an unknown job in a 404", async () => {
    const { coordinator, url } = await start();
    const response = await fetch(`${url}/v1/jobs/unit`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json; charset=utf-8");
    const json = (await response.json()) as Record<string, unknown>;
    expect(json).toEqual(jobStatusToJson(coordinator.status()));
    expect(json).toMatchObject({
      jobId: "unit",
      phase: "JOB_PHASE_PENDING",
      reason: "WaitingForMembers",
      step: 0,
      lossHistory: [],
      parameterServers: [],
      lastCheckpointUnixMs: "0",
    });
    expect(json).not.toHaveProperty("etaSeconds");

    const other = await fetch(`${url}/v1/jobs/other/watch`);
    expect(other.status).toBe(404);
    expect(await other.json()).toEqual({ code: "not_found", message: 'no job "other" here: this coordinator runs job "unit"' });
    // "/" is the dashboard (test/status/dashboard.test.ts).
    for (const path of ["/index.htm", "/v1/jobs", "/v1/jobs/unit/", "/v1/jobs/unit/logs", "/metrics/x"]) {
      const missing = await fetch(`${url}${path}`);
      expect([path, missing.status]).toEqual([path, 404]);
      expect(((await missing.json()) as { message: string }).message).toContain(`no such path: ${path}`);
    }
    const post = await fetch(`${url}/v1/jobs/unit`, { method: "POST", body: "{}" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET");
    expect(await post.json()).toEqual({ code: "unimplemented", message: "POST /v1/jobs/unit: only GET is supported" });
  });

  it("answers /healthz always and /readyz only while the coordinator is ready", async () => {
    const { readiness, url } = await start();
    const health = await fetch(`${url}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, "ok\n"]);
    const ready = await fetch(`${url}/readyz`);
    expect([ready.status, await ready.text()]).toEqual([200, "ok\n"]);
    readiness.ready = false;
    const notReady = await fetch(`${url}/readyz`);
    expect([notReady.status, await notReady.text()]).toEqual([503, "not yet\n"]);
  });

  it("lists the workers, and renders /metrics with the job's label", async () => {
    const { coordinator, url } = await start();
    coordinator.register(create(RegisterRequestSchema, { role: MemberRole.WORKER, host: "h1", backend: "cpu" }));
    const workers = (await (await fetch(`${url}/v1/jobs/unit/workers`)).json()) as {
      jobId: string;
      workers: Array<Record<string, unknown>>;
    };
    expect(workers.jobId).toBe("unit");
    expect(workers.workers).toEqual([
      expect.objectContaining({ workerId: "worker-0", host: "h1", backend: "cpu", state: "WORKER_STATE_REGISTERED", stepTimeMs: 0 }),
    ]);
    const metrics = await fetch(`${url}/metrics`);
    expect(metrics.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await metrics.text();
    expect(text).toContain('trainfleet_job_phase{job_id="unit",phase="pending"} 1\n');
    expect(text).toContain('trainfleet_live_workers{job_id="unit"} 1\n');
    expect(text).toContain('trainfleet_member_evictions_total{job_id="unit",role="worker",cause="stream_closed"} 0\n');
    expect(text).toContain("# TYPE trainfleet_step_duration_seconds histogram\n");
  });

  it("streams the status at once, keeps the stream alive with comments, and ends it after the final status", async () => {
    const { coordinator, url } = await start();
    const { stream, readUntil } = await openStream(`${url}/v1/jobs/unit/watch`);
    expect(stream.response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(await readUntil(() => stream.events.length === 1 && stream.raw.includes(": keep-alive\n\n"))).toBe(true);
    expect(stream.raw.startsWith(`id: ${coordinator.revision}\nevent: status\ndata: {`)).toBe(true);
    expect(stream.events[0]).toMatchObject({ id: String(coordinator.revision), event: "status" });
    expect(statusOf(stream.events[0]!).phase).toBe(JobPhase.PENDING);
    coordinator.fail("Terminated", "stopped by the test");
    expect(await readUntil(() => false)).toBe(false);
    const last = stream.events[stream.events.length - 1]!;
    expect(Number(last.id)).toBe(coordinator.revision);
    expect(statusOf(last)).toMatchObject({ phase: JobPhase.FAILED, reason: "Terminated" });
  });

  it("with Last-Event-ID sends nothing until the status moves past it, and nothing at all once the job has ended", async () => {
    const { coordinator, url } = await start();
    const seen = coordinator.revision;
    const { stream, readUntil } = await openStream(`${url}/v1/jobs/unit/watch`, { "last-event-id": String(seen) });
    // Keep-alive comments flow, but no event: nothing has changed since `seen`.
    await readUntil(() => (stream.raw.match(/: keep-alive/g) ?? []).length >= 2);
    expect(stream.events).toEqual([]);
    coordinator.register(create(RegisterRequestSchema, { role: MemberRole.WORKER, host: "h", backend: "cpu" }));
    await readUntil(() => stream.events.length === 1);
    expect(Number(stream.events[0]!.id)).toBeGreaterThan(seen);
    expect(statusOf(stream.events[0]!).workers.map((w) => [w.workerId, w.state])).toEqual([["worker-0", WorkerState.REGISTERED]]);

    coordinator.fail("Terminated", "stopped by the test");
    const final = coordinator.revision;
    const after = await openStream(`${url}/v1/jobs/unit/watch?lastEventId=${final}`);
    expect(await after.readUntil(() => false)).toBe(false);
    expect(after.stream.events).toEqual([]);
    const before = await openStream(`${url}/v1/jobs/unit/watch`, { "last-event-id": String(seen) });
    await before.readUntil(() => false);
    expect(before.stream.events.map((e) => e.id)).toEqual([String(final)]);
  });

  it("sends the same statuses as gRPC WatchJob", async () => {
    const { coordinator, url } = await start();
    const grpc: RunningServer = await startCoordinatorServer(coordinator, "127.0.0.1:0");
    cleanups.push(() => grpc.close(500));
    const jobs = createClient(JobService, grpc.address);
    cleanups.push(() => jobs.close());
    const { stream, readUntil } = await openStream(`${url}/v1/jobs/unit/watch`);
    const watched: JsonValue[] = [];
    let wake = () => {};
    const watching = (async () => {
      for await (const { status } of jobs.watchJob({})) {
        watched.push(jobStatusToJson(status!));
        wake();
      }
    })();
    /** Both watchers have had `count` statuses (each change is let through before the next). */
    const both = async (count: number) => {
      await readUntil(() => stream.events.length === count);
      while (watched.length < count) await new Promise<void>((resolve) => (wake = resolve));
    };
    await both(1);
    coordinator.register(create(RegisterRequestSchema, { role: MemberRole.PARAMETER_SERVER, host: "h", address: "127.0.0.1:1" }));
    await both(2);
    coordinator.fail("Terminated", "stopped by the test");
    await readUntil(() => false);
    await watching;
    const sent = stream.events.map((e) => JSON.parse(e.data) as JsonValue);
    expect(sent.length).toBe(3);
    expect(watched).toEqual(sent);
  });
});
