/**
 * Job events on a real nats-server (started here, stopped with SIGTERM): a local fleet of
 * real processes started with --nats-url publishes lifecycle JobEvents and per-step
 * StepMetrics; a core subscriber started before the job sees them in order; after the job,
 * a late JetStream ordered consumer replays the same history, and so does `trainfleet
 * events --from-start`; with NATS unreachable the job still completes and says so in its log.
 * Every wait is on a real signal: a message, a process exit.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { create, toJson } from "@bufbuild/protobuf";
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { connect } from "@nats-io/transport-node";
import type { BusMessage } from "@trainfleet/coordinator";
import { createNatsEventBus, decodeBusMessage, jobsStreamName } from "@trainfleet/coordinator";
import { JobEventKind, JobEventSchema, JobPhase, StepMetricsSchema } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { silentLogger } from "@trainfleet/runtime";
import { NatsServer } from "@trainfleet/testing/fixtures/nats-server";
import { runFleet, trainfleet } from "@trainfleet/testing/fleet/run-fleet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let server: NatsServer;
let client: NatsConnection;
beforeAll(async () => {
  server = await NatsServer.start();
  client = await connect({ servers: server.url });
});
afterAll(async () => {
  await client?.close();
  await server?.stop();
});

const jobId = "nats-events";
const maxSteps = 6;
const fleetFlags = [
  "--max-steps",
  String(maxSteps),
  "--eval-samples",
  "100",
  "--workers",
  "2",
  "--shards",
  "1",
  "--hidden",
  "8",
  "--backend",
  "cpu",
];

/** Raw messages of a core subscription, until (and including) the job's finished event. */
async function untilFinished(subscription: Subscription): Promise<Array<{ subject: string; data: Uint8Array }>> {
  const raw: Array<{ subject: string; data: Uint8Array }> = [];
  for await (const message of subscription) {
    raw.push({ subject: message.subject, data: message.data });
    const decoded = decodeBusMessage(message.subject, message.data);
    if (decoded.kind === "event" && decoded.event.kind === JobEventKind.FINISHED) break;
  }
  return raw;
}

const label = (m: BusMessage) =>
  m.kind === "event" ? `event ${m.event.sequence} ${JobEventKind[m.event.kind]}` : `metrics step ${m.metrics.step}`;
const asJson = (m: BusMessage) => ({
  subject: m.subject,
  ...(m.kind === "event" ? { event: toJson(JobEventSchema, m.event) } : { metrics: toJson(StepMetricsSchema, m.metrics) }),
});

describe("a job published to NATS", () => {
  let live: Array<{ subject: string; data: Uint8Array }>;
  let fleet: Awaited<ReturnType<typeof runFleet>>;

  it("reaches a core subscriber started before it: lifecycle events in order with gapless sequence numbers, a StepMetrics per step", async () => {
    const subscription = client.subscribe(`trainfleet.jobs.${jobId}.*`);
    await client.flush();
    const received = untilFinished(subscription);
    fleet = await runFleet([...fleetFlags, "--checkpoint-every", "3", "--job-id", jobId, "--nats-url", server.url]);
    expect(fleet.code, fleet.output).toBe(0);
    expect(fleet.output).toContain(`events: ${server.url} trainfleet.jobs.${jobId}.events/.metrics`);
    live = await received;
    const messages = live.map((m) => decodeBusMessage(m.subject, m.data));
    const steps = Array.from({ length: maxSteps }, (_, i) => `metrics step ${i + 1}`);
    // Checkpoints are written while training goes on (the shards' files and the coordinator's
    // manifest), so their events (steps 3 and 6) come at moments of their own between
    // STARTED and FINISHED; everything else has one order.
    const isCheckpoint = (m: BusMessage) => m.kind === "event" && m.event.kind === JobEventKind.CHECKPOINT_WRITTEN;
    const kindOf = (m: BusMessage) => (m.kind === "event" ? JobEventKind[m.event.kind] : `metrics step ${m.metrics.step}`);
    expect(messages.filter((m) => !isCheckpoint(m)).map(kindOf)).toEqual([
      "SUBMITTED",
      "MEMBER_JOINED",
      "MEMBER_JOINED",
      "MEMBER_JOINED",
      "STARTED",
      ...steps,
      "PHASE_CHANGED",
      "EVALUATION_DONE",
      "FINISHED",
    ]);
    const events = messages.flatMap((m) => (m.kind === "event" ? [m.event] : []));
    expect(events.map((e) => e.sequence)).toEqual(events.map((_, i) => BigInt(i + 1)));
    const checkpoints = messages.flatMap((m, index) =>
      m.kind === "event" && m.event.kind === JobEventKind.CHECKPOINT_WRITTEN ? [{ index, event: m.event }] : [],
    );
    expect(checkpoints.map(({ event }) => [event.step, event.checkpointPath])).toEqual([
      [3, join(fleet.folder, "checkpoints", "checkpoint-3.json")],
      [6, join(fleet.folder, "checkpoints", "checkpoint-6.json")],
    ]);
    const started = messages.map(kindOf).indexOf("STARTED");
    for (const { index } of checkpoints) expect(index > started && index < messages.length - 1).toBe(true);
    const withoutCheckpoints = events.filter((e) => e.kind !== JobEventKind.CHECKPOINT_WRITTEN);
    const metrics = messages.flatMap((m) => (m.kind === "metrics" ? [m.metrics] : []));
    expect(new Set(messages.map((m) => m.subject))).toEqual(
      new Set([`trainfleet.jobs.${jobId}.events`, `trainfleet.jobs.${jobId}.metrics`]),
    );
    expect(withoutCheckpoints.map((e) => JobPhase[e.phase])).toEqual([
      "PENDING",
      "PENDING",
      "PENDING",
      "PENDING",
      "RUNNING",
      "EVALUATING",
      "EVALUATING",
      "SUCCEEDED",
    ]);
    expect(events.slice(1, 4).map((e) => e.memberId)).toEqual(expect.arrayContaining(["ps-0", "worker-0", "worker-1"]));
    expect(events.every((e) => e.jobId === jobId)).toBe(true);
    // Times never go backwards; every step has a finite loss, a batch of 2 x 64 samples and both workers' timings.
    expect(messages.map((m) => Number(m.kind === "event" ? m.event.unixMs : m.metrics.unixMs))).toEqual(
      [...messages.map((m) => Number(m.kind === "event" ? m.event.unixMs : m.metrics.unixMs))].sort((a, b) => a - b),
    );
    expect(metrics.map((m) => [m.jobId, m.generation, m.epoch, m.samples, m.workers.length, Number.isFinite(m.loss)])).toEqual(
      steps.map(() => [jobId, 1, 0, 128, 2, true]),
    );
    const finished = events.at(-1)!;
    expect(finished.reason).toBe("Completed");
    expect(fleet.output).toContain(`test accuracy ${(finished.testAccuracy! * 100).toFixed(2)}%`);
    expect(finished.step).toBe(maxSteps);
  });

  it("is replayed whole, in the same order, to a JetStream ordered consumer that comes after the job ended", async () => {
    expect(live).toBeDefined();
    const info = await (await jetstreamManager(client)).streams.info(jobsStreamName);
    expect([info.config.subjects, info.config.max_age, info.config.discard, info.state.messages]).toEqual([
      ["trainfleet.jobs.>"],
      7 * 24 * 3600 * 1e9,
      "old",
      live.length,
    ]);
    const consumer = await jetstream(client).consumers.get(jobsStreamName, {
      filter_subjects: `trainfleet.jobs.${jobId}.*`,
      deliver_policy: DeliverPolicy.All,
    });
    const replayed: Array<{ subject: string; data: Uint8Array }> = [];
    const messages = await consumer.consume();
    for await (const message of messages) {
      replayed.push({ subject: message.subject, data: message.data });
      if (message.info.pending === 0) break;
    }
    await messages.close();
    expect(replayed.map((m) => m.subject)).toEqual(live.map((m) => m.subject));
    expect(replayed.map((m) => Buffer.from(m.data).toString("hex"))).toEqual(live.map((m) => Buffer.from(m.data).toString("hex")));
  });

  it("is printed by `trainfleet events --from-start --job ID --json`, which exits 0 at the finished event", async () => {
    expect(live).toBeDefined();
    const result = await trainfleet(["events", "--nats-url", server.url, "--job", jobId, "--from-start", "--json"]);
    expect([result.code, result.stderr]).toEqual([0, ""]);
    const printed = result.stdout
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line) as unknown);
    expect(printed).toEqual(live.map((m) => asJson(decodeBusMessage(m.subject, m.data))));
  });

  it("is printed one readable line per message, and a second run of the job replaces the first one's history", async () => {
    expect(live).toBeDefined();
    const again = await runFleet([...fleetFlags, "--max-steps", "2", "--job-id", jobId, "--nats-url", server.url]);
    expect(again.code, again.output).toBe(0);
    const result = await trainfleet(["events", "--nats-url", server.url, "--job", jobId, "--from-start"]);
    expect([result.code, result.stderr]).toEqual([0, ""]);
    const lines = result.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(8 + 2);
    expect(lines[0]).toMatch(
      new RegExp(
        `^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${jobId} #1 submitted, phase PENDING - WaitingForMembers: waiting for members: 0/1 parameter-server shards, 0/2 workers registered$`,
      ),
    );
    expect(lines[5]).toMatch(new RegExp(`^[\\dT:.Z-]+ ${jobId} step 1 epoch 1 loss \\d+\\.\\d{4} [\\d,]+ samples/s 0\\.0 ms/step$`));
    expect(lines[9]).toMatch(
      new RegExp(
        `^[\\dT:.Z-]+ ${jobId} #8 finished, phase SUCCEEDED, step 2, test accuracy [\\d.]+% \\(loss [\\d.]+\\) - Completed: trained 2 steps; test accuracy [\\d.]+%$`,
      ),
    );
  });
});

/** A port nobody listens on: taken from the kernel, then let go. */
async function unusedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

it("queues what is published while NATS is down and sends it, first and in order, once a server comes up", async () => {
  const port = await unusedPort();
  const logged: string[] = [];
  let onConnected!: () => void;
  const connected = new Promise<void>((resolve) => (onConnected = resolve));
  const logger: Logger = {
    ...silentLogger,
    warn: (_fields, message) => void logged.push(message),
    info: (_fields, message) => {
      logged.push(message);
      if (message === "publishing job events to NATS") onConnected();
    },
    child: () => logger,
  };
  const bus = createNatsEventBus({ url: `nats://127.0.0.1:${port}`, logger, retryMs: 20 });
  const event = (sequence: number) =>
    create(JobEventSchema, { jobId: "queued", sequence: BigInt(sequence), kind: JobEventKind.MEMBER_JOINED });
  bus.publishEvent(event(1));
  bus.publishMetrics(create(StepMetricsSchema, { jobId: "queued", step: 1 }));
  bus.publishEvent(event(2));
  const late = await NatsServer.start(port);
  try {
    await connected;
    bus.publishEvent(event(3));
    await bus.close(5_000);
    const reader = await connect({ servers: late.url });
    const consumer = await jetstream(reader).consumers.get(jobsStreamName, { filter_subjects: "trainfleet.jobs.queued.*" });
    const seen: string[] = [];
    const messages = await consumer.consume();
    for await (const message of messages) {
      seen.push(label(decodeBusMessage(message.subject, message.data)));
      if (message.info.pending === 0) break;
    }
    await messages.close();
    await reader.close();
    expect(seen).toEqual(["event 1 MEMBER_JOINED", "metrics step 1", "event 2 MEMBER_JOINED", "event 3 MEMBER_JOINED"]);
    expect(logged).toEqual([
      "cannot reach NATS: job events are queued and the connection retried; the job goes on",
      "publishing job events to NATS",
    ]);
  } finally {
    await late.stop();
  }
});

it("with NATS unreachable, the job still completes, and the coordinator logs that its events were not published", async () => {
  const port = await unusedPort();
  const url = `nats://127.0.0.1:${port}`;
  const fleet = await runFleet([...fleetFlags, "--max-steps", "3", "--job-id", "nats-down", "--nats-url", url]);
  expect(fleet.code, fleet.output).toBe(0);
  expect(fleet.output).toContain("SUCCEEDED");
  const lines = readFileSync(join(fleet.folder, "coordinator.log"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { level: string | number; msg: string; nats?: string; err?: string; unsent?: number });
  const refused = lines.find((line) => line.msg === "cannot reach NATS: job events are queued and the connection retried; the job goes on");
  expect(refused?.nats).toBe(url);
  expect(refused?.err).toContain(`cannot reach NATS at ${url}`);
  const lost = lines.find((line) => line.msg === "NATS was never reached: these job events and metrics were not published");
  // submitted, 3 members joined, started, phase changed, evaluation done, finished, and 3 steps' metrics
  expect(lost?.unsent).toBe(8 + 3);
});

it("documents the events command and --nats-url, and needs a NATS URL", async () => {
  const [events, coordinator, run, missing] = await Promise.all([
    trainfleet(["events", "--help"]),
    trainfleet(["coordinator", "--help"]),
    trainfleet(["run", "--help"]),
    trainfleet(["events", "--job", "x"]),
  ]);
  expect(events.code).toBe(0);
  expect(events.stdout).toMatch(/^Usage: trainfleet events --nats-url URL \[--job ID\] \[--from-start\] \[--json\]\n/);
  for (const text of ["--nats-url <string>", "env TRAINFLEET_NATS_URL", "--job <string>", "--from-start\n", "--json\n"])
    expect(events.stdout).toContain(text);
  for (const help of [coordinator.stdout, run.stdout]) expect(help).toContain("--nats-url <string>\n      NATS server(s)");
  expect([missing.code, missing.stderr]).toEqual([1, "trainfleet: --nats-url is required; see --help\n"]);
});
