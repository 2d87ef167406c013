/**
 * The in-process event bus (the bus without NATS) and the JobEventRecorder: history replayed
 * to late subscribers in order, live-only subscribers, job filters, close; the coordinator's
 * lifecycle events in order with gapless sequence numbers; a failing bus never fails a job.
 */
import { create } from "@bufbuild/protobuf";
import type { JobEvent } from "@trainfleet/proto";
import {
  JobEventKind,
  JobEventSchema,
  JobPhase,
  JobSpecSchema,
  MemberRole,
  RegisterRequestSchema,
  ReportGenerationRequestSchema,
  StepMetricsSchema,
} from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import { resolveJobSpec } from "@trainfleet/spec";
import { describe, expect, it } from "vitest";
import type { EventBus } from "../src/events/event-bus.js";
import type { BusMessage } from "../src/events/event-subjects.js";
import { decodeBusMessage, encodeBusMessage, eventsSubject, jobFilterSubject, metricsSubject } from "../src/events/event-subjects.js";
import { InProcessEventBus } from "../src/events/in-process-event-bus.js";
import { JobEventRecorder } from "../src/events/job-event-recorder.js";
import { Coordinator } from "../src/job/coordinator.js";

const event = (jobId: string, sequence: number) =>
  create(JobEventSchema, { jobId, sequence: BigInt(sequence), kind: JobEventKind.MEMBER_JOINED });
const metrics = (jobId: string, step: number) => create(StepMetricsSchema, { jobId, step });
const describeMessage = (m: BusMessage) =>
  m.kind === "event" ? `${m.subject} #${m.event.sequence}` : `${m.subject} step ${m.metrics.step}`;

/** Reads `count` messages from an iterable, then stops iterating. */
async function take(messages: AsyncIterable<BusMessage>, count: number): Promise<string[]> {
  const seen: string[] = [];
  if (count === 0) return seen;
  for await (const message of messages) {
    seen.push(describeMessage(message));
    if (seen.length === count) break;
  }
  return seen;
}

describe("the in-process event bus", () => {
  it("replays its history to a late subscriber, in order, then follows; a live subscriber sees only what comes after", async () => {
    const bus = new InProcessEventBus();
    bus.publishEvent(event("a", 1));
    bus.publishMetrics(metrics("a", 1));
    const signal = new AbortController().signal;
    const late = bus.subscribe({ fromStart: true }, signal);
    const live = bus.subscribe({}, signal);
    bus.publishEvent(event("a", 2));
    expect(await take(late, 3)).toEqual(["trainfleet.jobs.a.events #1", "trainfleet.jobs.a.metrics step 1", "trainfleet.jobs.a.events #2"]);
    expect(await take(live, 1)).toEqual(["trainfleet.jobs.a.events #2"]);
  });

  it("keeps to one job when asked, ends subscriptions on close and on abort, and bounds its history", async () => {
    const bus = new InProcessEventBus(2);
    bus.publishEvent(event("a", 1));
    bus.publishEvent(event("b", 1));
    bus.publishEvent(event("a", 2));
    expect(bus.history.map(describeMessage)).toEqual(["trainfleet.jobs.b.events #1", "trainfleet.jobs.a.events #2"]);
    const onlyA = bus.subscribe({ jobId: "a", fromStart: true }, new AbortController().signal);
    const aborted = new AbortController();
    const cut = bus.subscribe({}, aborted.signal);
    bus.publishEvent(event("b", 2));
    await bus.close();
    bus.publishEvent(event("a", 3));
    const all: string[] = [];
    for await (const message of onlyA) all.push(describeMessage(message));
    expect(all).toEqual(["trainfleet.jobs.a.events #2"]);
    aborted.abort();
    const rest: string[] = [];
    for await (const message of cut) rest.push(describeMessage(message));
    expect(rest).toEqual([]);
  });
});

describe("subjects and encoding", () => {
  it("names each job's subjects and round-trips both message types as protobuf, refusing other subjects", () => {
    expect([eventsSubject("j"), metricsSubject("j"), jobFilterSubject("j"), jobFilterSubject()]).toEqual([
      "trainfleet.jobs.j.events",
      "trainfleet.jobs.j.metrics",
      "trainfleet.jobs.j.*",
      "trainfleet.jobs.>",
    ]);
    const message: BusMessage = { kind: "metrics", subject: metricsSubject("j"), metrics: metrics("j", 7) };
    const back = decodeBusMessage(message.subject, encodeBusMessage(message));
    expect(back.kind === "metrics" && back.metrics.step).toBe(7);
    expect(() => decodeBusMessage("trainfleet.jobs.j.other", new Uint8Array())).toThrow("unexpected subject trainfleet.jobs.j.other");
    expect(() => decodeBusMessage("trainfleet.jobs.j.events", new Uint8Array([0xff]))).toThrow(
      "a message on trainfleet.jobs.j.events is not a valid JobEvent",
    );
  });
});

describe("the job event recorder", () => {
  it("numbers events 1, 2, 3 and stamps them; measures each step from the one before", () => {
    const bus = new InProcessEventBus();
    let now = 1_000;
    const recorder = new JobEventRecorder(bus, silentLogger, () => now);
    recorder.event({ jobId: "j", kind: JobEventKind.SUBMITTED });
    now = 1_500;
    recorder.event({ jobId: "j", kind: JobEventKind.STARTED });
    recorder.metrics({ jobId: "j", step: 1 }, 2_000);
    recorder.metrics({ jobId: "j", step: 2 }, 2_250);
    const seen = bus.history.map((m) =>
      m.kind === "event" ? [m.event.sequence, m.event.unixMs] : [m.metrics.stepTimeMs, m.metrics.unixMs],
    );
    expect(seen).toEqual([
      [1n, 1_000n],
      [2n, 1_500n],
      [0, 2_000n],
      [250, 2_250n],
    ]);
  });

  it("logs a bus that throws instead of throwing", () => {
    const warnings: string[] = [];
    const broken: EventBus = {
      publishEvent: () => {
        throw new Error("broken");
      },
      publishMetrics: () => {
        throw new Error("broken");
      },
      close: () => Promise.resolve(),
    };
    const recorder = new JobEventRecorder(broken, { ...silentLogger, warn: (_fields, message) => warnings.push(message) }, Date.now);
    expect(() => recorder.event({ jobId: "j", kind: JobEventKind.SUBMITTED })).not.toThrow();
    expect(() => recorder.metrics({ jobId: "j", step: 1 }, 1)).not.toThrow();
    expect(warnings).toEqual(["could not publish a job event; the job goes on", "could not publish step metrics; the job goes on"]);
  });
});

describe("a coordinator's lifecycle events", () => {
  it("are published in order with gapless sequence numbers: submitted, joined, started, lost, paused, joined, resumed in a new generation, finished", async () => {
    const bus = new InProcessEventBus();
    const spec = resolveJobSpec(create(JobSpecSchema, { jobId: "unit", workers: { replicas: 1 }, parameterServers: { shards: 1 } }));
    const coordinator = new Coordinator({ spec, leaseMs: 60_000, logger: silentLogger, events: bus });
    coordinator.register(create(RegisterRequestSchema, { role: MemberRole.PARAMETER_SERVER, host: "h", address: "127.0.0.1:1" }));
    const { memberId } = coordinator.register(create(RegisterRequestSchema, { role: MemberRole.WORKER, host: "h", backend: "cpu" }));
    const shardReports = (generation: number) =>
      coordinator.reportGeneration(create(ReportGenerationRequestSchema, { memberId: "ps-0", generation, version: 0 }));
    shardReports(1);
    coordinator.streamClosed(memberId);
    const second = coordinator.register(create(RegisterRequestSchema, { role: MemberRole.WORKER, host: "h", backend: "cpu" })).memberId;
    shardReports(2);
    coordinator.fail("Terminated", "the test is over");
    const final = await coordinator.done();
    const events: JobEvent[] = bus.history.flatMap((m) => (m.kind === "event" ? [m.event] : []));
    expect(events.map((e) => [e.sequence, JobEventKind[e.kind], JobPhase[e.phase], e.generation, e.memberId, e.jobId])).toEqual([
      [1n, "SUBMITTED", "PENDING", 0, "", "unit"],
      [2n, "MEMBER_JOINED", "PENDING", 0, "ps-0", "unit"],
      [3n, "MEMBER_JOINED", "PENDING", 0, memberId, "unit"],
      [4n, "STARTED", "RUNNING", 1, "", "unit"],
      [5n, "MEMBER_LOST", "RUNNING", 1, memberId, "unit"],
      [6n, "PHASE_CHANGED", "PAUSED", 1, "", "unit"],
      [7n, "MEMBER_JOINED", "PAUSED", 1, second, "unit"],
      [8n, "PHASE_CHANGED", "RUNNING", 2, "", "unit"],
      [9n, "GENERATION_CHANGED", "RUNNING", 2, "", "unit"],
      [10n, "FINISHED", "FAILED", 2, "", "unit"],
    ]);
    expect(events[4]!.rank).toBe(0);
    expect(events[4]!.message).toBe(`worker ${memberId} (rank 0) was lost: its assignment stream closed`);
    expect(events[8]!.message).toBe(`worker ${second} joined: generation 2 of 1 worker goes on from step 0`);
    expect([events[9]!.reason, events[9]!.message]).toEqual([final.reason, final.message]);
  });
});
