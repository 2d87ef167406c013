/**
 * The coordinator's status API and the Prometheus metrics against live local fleets of
 * real processes (a coordinator, a parameter-server shard and two workers, started one by
 * one so that the test sees them join): GET and the event stream while members join, train,
 * die and the job ends; Last-Event-ID resumption; /metrics of the coordinator and of the
 * shard checked by the real promtool; `trainfleet status`. Every wait is on a real signal:
 * a log line, an event, a process exit.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JsonValue } from "@bufbuild/protobuf";
import type { JobStatus } from "@trainfleet/proto";
import { JobPhase, jobStatusFromJson, jobWorkersFromJson, WorkerState } from "@trainfleet/proto";
import { sampleValue } from "@trainfleet/testing/fixtures/prometheus-text";
import { checkMetrics } from "@trainfleet/testing/fixtures/promtool";
import type { FleetProcess } from "@trainfleet/testing/fleet/fleet-process";
import { processGroup } from "@trainfleet/testing/fleet/fleet-process";
import { readToken, runFleet, trainfleet } from "@trainfleet/testing/fleet/run-fleet";
import { StatusEvents } from "@trainfleet/testing/fleet/status-events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const { start, stop: stopProcesses } = processGroup();
const streams: StatusEvents[] = [];
afterAll(async () => {
  for (const stream of streams) stream.close();
  await stopProcesses();
});

async function watch(url: string, lastEventId?: number): Promise<StatusEvents> {
  const stream = await StatusEvents.open(url, lastEventId);
  streams.push(stream);
  return stream;
}

/** A coordinator for a tiny job (MLP 784-16-10, 2 workers x batch 16, 1 shard) that keeps serving for a minute after the end. */
async function startCoordinator(jobId: string, maxSteps: number, extra: string[] = []) {
  const coordinator = start(`coordinator ${jobId}`, [
    "coordinator",
    "--insecure",
    ...["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--linger-ms", "60000", "--lease-ms", "4500"],
    ...[
      "--job-id",
      jobId,
      "--workers",
      "2",
      "--shards",
      "1",
      "--hidden",
      "16",
      "--batch-size",
      "16",
      "--max-steps",
      String(maxSteps),
      "--eval-samples",
      "200",
    ],
    ...extra,
  ]);
  const address = (await coordinator.log("coordinator listening")).address as string;
  const { url, metrics } = (await coordinator.log("status API listening")) as unknown as { url: string; metrics: string };
  return { coordinator, address, jobUrl: url, metricsUrl: metrics, origin: new URL(url).origin };
}

const startShard = (address: string) =>
  start("ps-0", ["ps", "--insecure", "--coordinator", address, "--shard-index", "0", "--metrics-listen", "127.0.0.1:0"]);
const startWorker = (name: string, address: string) => start(name, ["worker", "--insecure", "--coordinator", address, "--backend", "cpu"]);

async function getJson(url: string): Promise<{ status: number; json: JsonValue }> {
  const response = await fetch(url);
  return { status: response.status, json: (await response.json()) as JsonValue };
}

async function scrape(url: string): Promise<string> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return response.text();
}

const phases = (events: ReadonlyArray<{ status: JobStatus }>) =>
  events.map((e) => e.status.phase).filter((phase, i, all) => i === 0 || all[i - 1] !== phase);
const workerStates = (status: JobStatus) => status.workers.map((w) => [w.workerId, w.state]);

it("documents the status command and the listening flags in --help, and needs a URL", async () => {
  const [status, coordinator, ps, missing] = await Promise.all([
    trainfleet(["status", "--help"]),
    trainfleet(["coordinator", "--help"]),
    trainfleet(["ps", "--help"]),
    trainfleet(["status", "--watch"]),
  ]);
  expect(status.code).toBe(0);
  expect(status.stdout).toMatch(/^Usage: trainfleet status URL\|JOB_FOLDER \[--token-file FILE\] \[--watch\] \[--json\]\n/);
  for (const text of [
    "--url <string>",
    "env TRAINFLEET_STATUS_URL",
    "--watch\n",
    "--json\n",
    "--job-id <string>",
    "--token-file <string>",
    "TRAINFLEET_TOKEN",
  ])
    expect(status.stdout).toContain(text);
  for (const text of [
    "--http-listen <string>",
    "default 127.0.0.1:7080; env TRAINFLEET_HTTP_LISTEN",
    "--linger-ms <integer>",
    "--read-token-file <string>",
    "env TRAINFLEET_READ_TOKEN_FILE",
    "TRAINFLEET_READ_TOKEN (a file is better",
    "--control-token-file <string>",
    "--metrics-open\n",
    "--allowed-hosts <string>",
    "--max-watchers <integer>",
    "default 256; env TRAINFLEET_MAX_WATCHERS",
  ])
    expect(coordinator.stdout).toContain(text);
  expect(ps.stdout).toContain("--metrics-listen <string>");
  expect(ps.stdout).toContain("env TRAINFLEET_METRICS_LISTEN");
  expect([missing.code, missing.stderr]).toEqual([1, "trainfleet: --url is required; see --help\n"]);
});

it("`trainfleet run` prints the status URL and the dashboard link (with the read token) beside the logs folder, and each process logs what it listens on", async () => {
  const result = await runFleet([
    "--max-steps",
    "3",
    "--eval-samples",
    "100",
    "--workers",
    "1",
    "--shards",
    "1",
    "--hidden",
    "8",
    "--job-id",
    "status-run",
    "--backend",
    "cpu",
  ]);
  expect(result.code).toBe(0);
  const folder = result.folder.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  expect(result.output).toMatch(
    new RegExp(
      `^logs and results: .*\n(?:.*\n)?status: http://127\\.0\\.0\\.1:(\\d+)/v1/jobs/status-run \\(trainfleet status ${folder} --watch\\)\ndashboard: http://127\\.0\\.0\\.1:\\1/#token=[A-Za-z0-9_-]{43}$`,
      "m",
    ),
  );
  expect(result.output).toContain(`/#token=${readToken(result.folder)}\n`);
  const logged = (name: string, message: string) =>
    readFileSync(join(result.folder, `${name}.log`), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { msg: string; url?: string })
      .find((line) => line.msg === message);
  expect(logged("coordinator", "status API listening")?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/jobs\/status-run$/);
  expect(logged("ps-0", "metrics listening")?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
});

describe("a job that succeeds", () => {
  const jobId = "status-ok";
  const maxSteps = 400;
  let fleet: Awaited<ReturnType<typeof startCoordinator>>;
  let shard: FleetProcess;
  let workers: FleetProcess[] = [];
  let shardMetricsUrl: string;
  let events: StatusEvents;
  let firstTraining: { id: number; status: JobStatus };

  beforeAll(async () => {
    fleet = await startCoordinator(jobId, maxSteps);
  });

  it("logs the job's status URL; answers /healthz, /readyz, and a 404 naming another job", async () => {
    expect(fleet.jobUrl).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/v1/jobs/${jobId}$`));
    expect(fleet.metricsUrl).toBe(`${fleet.origin}/metrics`);
    expect((await fetch(`${fleet.origin}/healthz`)).status).toBe(200);
    expect((await fetch(`${fleet.origin}/readyz`)).status).toBe(200);
    expect(await getJson(`${fleet.origin}/v1/jobs/another-job`)).toEqual({
      status: 404,
      json: { code: "not_found", message: `no job "another-job" here: this coordinator runs job "${jobId}"` },
    });
    const { status, json } = await getJson(fleet.jobUrl);
    expect(status).toBe(200);
    expect(jobStatusFromJson(json)).toMatchObject({
      jobId,
      phase: JobPhase.PENDING,
      reason: "WaitingForMembers",
      workers: [],
      parameterServers: [],
    });
  });

  it("streams the members as they join; Last-Event-ID resumes after the given event", async () => {
    events = await watch(`${fleet.jobUrl}/watch`);
    expect((await events.waitFor("a first status", () => true)).status.phase).toBe(JobPhase.PENDING);
    shard = startShard(fleet.address);
    shardMetricsUrl = (await shard.log("metrics listening")).url as string;
    // The shard's first heartbeat brings its counters; nothing changes after it until a worker joins.
    const heartbeat = await events.waitFor("the shard's first heartbeat", (s) => s.parameterServers[0]?.stats !== undefined);
    expect(heartbeat.status.parameterServers.map((p) => [p.index, p.memberId, p.state])).toEqual([[0, "ps-0", WorkerState.REGISTERED]]);
    expect(heartbeat.status.message).toBe("waiting for members: 1/1 parameter-server shards, 0/2 workers registered");
    const lastId = events.events.at(-1)!.id;

    const resumed = await watch(`${fleet.jobUrl}/watch`, lastId);
    workers = [startWorker("worker-0", fleet.address)];
    expect((await workers[0]!.log("registered with the coordinator")).memberId).toBe("worker-0");
    await resumed.waitFor("worker-0 in the resumed stream", (s) => s.workers.length === 1);
    // The resumed stream's first event is the first change after lastId, not the status at lastId.
    expect(resumed.events[0]!.id).toBeGreaterThan(lastId);
    expect(workerStates(resumed.events[0]!.status)).toEqual([["worker-0", WorkerState.REGISTERED]]);
    resumed.close();

    workers.push(startWorker("worker-1", fleet.address));
    firstTraining = await events.waitFor("the first training step", (s) => s.phase === JobPhase.RUNNING && s.step >= 1);
    expect(workerStates(firstTraining.status)).toEqual([
      ["worker-0", WorkerState.TRAINING],
      ["worker-1", WorkerState.TRAINING],
    ]);
  });

  it("GET shows the job training, and /workers its workers", async () => {
    const status = jobStatusFromJson((await getJson(fleet.jobUrl)).json);
    expect(status).toMatchObject({ jobId, phase: JobPhase.RUNNING, reason: "Training", generation: 1, totalSteps: maxSteps, epochs: 3 });
    expect(status.step).toBeGreaterThanOrEqual(firstTraining.status.step);
    expect(status.workers.map((w) => [w.workerId, w.rank, w.state, w.backend])).toEqual([
      ["worker-0", 0, WorkerState.TRAINING, "cpu"],
      ["worker-1", 1, WorkerState.TRAINING, "cpu"],
    ]);
    expect(status.workers.every((w) => w.lastHeartbeatUnixMs > 0n)).toBe(true);
    const list = await getJson(`${fleet.jobUrl}/workers`);
    expect(list.status).toBe(200);
    const listed = jobWorkersFromJson(list.json);
    expect([listed.jobId, listed.generation, listed.workers.map((w) => w.workerId)]).toEqual([jobId, 1, ["worker-0", "worker-1"]]);
  });

  it("serves /metrics on the coordinator and the shard that pass promtool, with job labels and counters that increase", async () => {
    const job = { job_id: jobId };
    const shardLabels = { job_id: jobId, shard: "0" };
    // The step-time histogram measures between consecutive completions: it has a sample from the second step on.
    await events.waitFor("two completed steps", (s) => s.step >= 2);
    const [coordinator1, shard1] = await Promise.all([scrape(fleet.metricsUrl), scrape(shardMetricsUrl)]);
    // Every step assigned after the first scrapes pushes and completes after them.
    const atScrape = jobStatusFromJson((await getJson(fleet.jobUrl)).json).step;
    await events.waitFor("five more steps", (s) => s.step >= atScrape + 5);
    const [coordinator2, shard2] = await Promise.all([scrape(fleet.metricsUrl), scrape(shardMetricsUrl)]);

    for (const [what, text] of [
      ["coordinator", coordinator2],
      ["shard", shard2],
    ] as const) {
      expect({ what, ...checkMetrics(text) }).toEqual({ what, code: 0, output: "" });
    }
    for (const name of [
      "trainfleet_job_phase",
      "trainfleet_steps_total",
      "trainfleet_samples_total",
      "trainfleet_samples_per_second",
      "trainfleet_step_duration_seconds",
      "trainfleet_worker_compute_seconds_total",
      "trainfleet_worker_communication_seconds_total",
      "trainfleet_training_loss",
      "trainfleet_eta_seconds",
      "trainfleet_live_workers",
      "trainfleet_generation",
      "trainfleet_generation_changes_total",
      "trainfleet_member_evictions_total",
      "trainfleet_checkpoint_age_seconds",
    ]) {
      expect(coordinator2).toContain(`# HELP ${name} `);
    }
    expect(sampleValue(coordinator2, "trainfleet_job_phase", { ...job, phase: "running" })).toBe(1);
    expect(sampleValue(coordinator2, "trainfleet_live_workers", job)).toBe(2);
    expect(sampleValue(coordinator2, "trainfleet_generation", job)).toBe(1);
    expect(sampleValue(coordinator2, "trainfleet_generation_changes_total", job)).toBe(1);
    expect(sampleValue(coordinator2, "trainfleet_member_evictions_total", { ...job, role: "worker", cause: "lease_expired" })).toBe(0);
    for (const [name, labels] of [
      ["trainfleet_steps_total", job],
      ["trainfleet_samples_total", job],
      ["trainfleet_step_duration_seconds_count", job],
      ["trainfleet_step_duration_seconds_sum", job],
      ["trainfleet_worker_compute_seconds_total", { ...job, worker_id: "worker-1" }],
      ["trainfleet_worker_communication_seconds_total", { ...job, worker_id: "worker-0" }],
    ] as const) {
      expect({ name, increased: sampleValue(coordinator2, name, labels) > sampleValue(coordinator1, name, labels) }).toEqual({
        name,
        increased: true,
      });
    }
    for (const name of [
      "trainfleet_ps_pushed_bytes_total",
      "trainfleet_ps_pulled_bytes_total",
      "trainfleet_ps_aggregation_seconds_total",
      "trainfleet_ps_updates_total",
    ]) {
      expect({ name, increased: sampleValue(shard2, name, shardLabels) > sampleValue(shard1, name, shardLabels) }).toEqual({
        name,
        increased: true,
      });
    }
    expect(sampleValue(shard2, "trainfleet_ps_parameters", shardLabels)).toBe(784 * 16 + 16 + 16 * 10 + 10);
  });

  it("carries the loss history, step times, ETA and the shard's traffic while training", async () => {
    // A status from well into training: two steps reported (so a rate exists) and a shard
    // heartbeat from after its first completed step (pushes, pulls and aggregation done).
    // Shard heartbeats and worker reports arrive independently, so wait for both.
    const { status } = await events.waitFor(
      "two completed steps and the shard's first step in a heartbeat",
      (s) => s.phase === JobPhase.RUNNING && s.step >= 2 && s.samplesPerSecond > 0 && (s.parameterServers[0]?.stats?.version ?? 0) > 0,
    );
    const stats = status.parameterServers[0]!.stats!;
    expect(Number(stats.bytesIn)).toBeGreaterThan(0);
    expect(Number(stats.bytesOut)).toBeGreaterThan(0);
    expect(stats.aggregationMs).toBeGreaterThan(0);
    expect(stats.version).toBeGreaterThan(0);
    expect(status.lossHistory.length).toBeGreaterThan(0);
    expect(status.lossHistory.reduce((sum, p) => sum + p.steps, 0)).toBe(status.step);
    expect(status.lossHistory.at(-1)!.step).toBe(status.step);
    expect(status.samplesPerSecond).toBeGreaterThan(0);
    expect(status.etaSeconds).toBeGreaterThan(0);
    for (const w of status.workers) {
      expect(w.computeMs).toBeGreaterThan(0);
      expect(w.communicateMs).toBeGreaterThan(0);
      expect(w.stepTimeMs).toBeCloseTo(w.computeMs + w.communicateMs, 6);
    }
  });

  it("streams Pending, Running, Evaluating, Succeeded in order with increasing ids, then ends", async () => {
    await events.ended;
    expect(phases(events.events)).toEqual([JobPhase.PENDING, JobPhase.RUNNING, JobPhase.EVALUATING, JobPhase.SUCCEEDED]);
    const ids = events.events.map((e) => e.id);
    expect(ids.every((id, i) => i === 0 || id > ids[i - 1]!)).toBe(true);
    const final = events.events.at(-1)!.status;
    expect(final).toMatchObject({ phase: JobPhase.SUCCEEDED, reason: "Completed", step: maxSteps });
    expect(final.accuracyHistory).toEqual([expect.objectContaining({ step: maxSteps, value: final.testAccuracy, steps: 1 })]);
    expect(final.testAccuracy).toBeGreaterThan(0.3);
    expect(final.lossHistory.length).toBeLessThanOrEqual(200);
    expect(final.lossHistory.reduce((sum, p) => sum + p.steps, 0)).toBe(maxSteps);
    expect(final.etaSeconds).toBeUndefined();
    expect(workerStates(final)).toEqual([
      ["worker-0", WorkerState.STOPPED],
      ["worker-1", WorkerState.STOPPED],
    ]);
    expect(final.parameterServers.map((p) => p.state)).toEqual([WorkerState.STOPPED]);
    // The shard's counters in the final status are from after the last step.
    expect(final.parameterServers[0]!.stats!.version).toBe(maxSteps);
    // The members exit 0 once told to stop; the coordinator keeps serving (--linger-ms).
    for (const member of [shard, ...workers]) expect(await member.exited).toEqual({ code: 0, signal: null });
  });

  it("after the end, GET returns the final status, and Last-Event-ID gets only what is newer", async () => {
    const final = events.events.at(-1)!;
    expect(await getJson(fleet.jobUrl)).toEqual({ status: 200, json: final.json });
    const upToDate = await watch(`${fleet.jobUrl}/watch`, final.id);
    await upToDate.ended;
    expect(upToDate.events).toEqual([]);
    const behind = await watch(`${fleet.jobUrl}/watch`, firstTraining.id);
    await behind.ended;
    expect(behind.events.map((e) => [e.id, e.json])).toEqual([[final.id, final.json]]);
  });

  afterAll(async () => {
    // The coordinator is lingering; SIGTERM ends it.
    fleet?.coordinator.kill("SIGTERM");
    await fleet?.coordinator.exited;
  });

  it("`trainfleet status` prints the same JSON as GET, a readable summary, and --watch exits 0", async () => {
    const { json } = await getJson(fleet.jobUrl);
    const [asJson, summary, watched] = await Promise.all([
      trainfleet(["status", fleet.jobUrl, "--json"]),
      trainfleet(["status", fleet.origin, "--job-id", jobId]),
      trainfleet(["status", "--url", fleet.jobUrl, "--watch"]),
    ]);
    expect({ code: asJson.code, stderr: asJson.stderr }).toEqual({ code: 0, stderr: "" });
    expect(JSON.parse(asJson.stdout)).toEqual(json);
    expect(summary.code).toBe(0);
    expect(summary.stdout).toMatch(new RegExp(`^job ${jobId}: SUCCEEDED \\(Completed\\), generation 1\n`));
    expect(summary.stdout).toMatch(/^test accuracy \d+\.\d\d% \(test loss \d\.\d{4}\)$/m);
    expect(summary.stdout).toMatch(/^ {2}worker-1 {2}rank 1 {2}STOPPED /m);
    expect(summary.stdout).toMatch(/^ {2}ps-0 {2}STOPPED .* in \d/m);
    expect(watched.code).toBe(0);
    expect(watched.stdout).toContain(`job ${jobId}: SUCCEEDED (Completed)`);
  });

  it("a SIGTERM while the coordinator lingers ends it with the job's exit code (0), not 143: its work was done", async () => {
    fleet.coordinator.kill("SIGTERM");
    expect(await fleet.coordinator.exited).toEqual({ code: 0, signal: null });
  });
});

describe("a job whose worker is killed below its minimum", () => {
  const jobId = "status-lost";
  /** Where the coordinator writes its final word (on Kubernetes: /dev/termination-log, which the operator reads). */
  const finalWord = join(mkdtempSync(join(tmpdir(), "trainfleet-final-word-")), "termination-log");
  let fleet: Awaited<ReturnType<typeof startCoordinator>>;
  let events: StatusEvents;
  let members: FleetProcess[];

  beforeAll(async () => {
    fleet = await startCoordinator(jobId, 100_000, ["--min-workers", "2", "--pause-timeout", "3", "--termination-message-file", finalWord]);
    events = await watch(`${fleet.jobUrl}/watch`);
    members = [startShard(fleet.address), startWorker("worker-0", fleet.address)];
    await events.waitFor("worker-0", (s) => s.workers.length === 1);
    members.push(startWorker("worker-1", fleet.address));
    await events.waitFor("training", (s) => s.phase === JobPhase.RUNNING && s.step >= 2);
  });

  it("shows the worker LOST, the job PAUSED with its reason and deadline, then FAILED with PauseTimeout, in the event stream and in GET", async () => {
    const [shard, worker0, worker1] = members as [FleetProcess, FleetProcess, FleetProcess];
    worker1.kill("SIGKILL");
    expect(await worker1.exited).toEqual({ code: null, signal: "SIGKILL" });
    const paused = await events.waitFor("paused", (s) => s.phase === JobPhase.PAUSED);
    expect(paused.status).toMatchObject({ reason: "NotEnoughWorkers", generation: 1 });
    expect(paused.status.message).toMatch(
      /^worker worker-1 \(rank 1\) was lost: its assignment stream closed: 1 worker, fewer than workers.minWorkers \(2\); waiting for more until \d{4}-\d\d-\d\dT/,
    );
    expect(Number(paused.status.pauseDeadlineUnixMs) - Date.now()).toBeGreaterThan(0);
    expect(Number(paused.status.pauseDeadlineUnixMs) - Date.now()).toBeLessThanOrEqual(3_000);
    await events.ended;
    const final = events.events.at(-1)!;
    expect(final.status).toMatchObject({ phase: JobPhase.FAILED, reason: "PauseTimeout", pauseDeadlineUnixMs: 0n });
    expect(final.status.message).toMatch(
      /^fewer than 2 workers \(workers.minWorkers\) for 3 s \(workers.pauseTimeoutSeconds\): worker worker-1 \(rank 1\) was lost/,
    );
    expect(workerStates(final.status)).toEqual([
      ["worker-0", WorkerState.STOPPED],
      ["worker-1", WorkerState.LOST],
    ]);
    expect(phases(events.events)).toEqual([JobPhase.PENDING, JobPhase.RUNNING, JobPhase.PAUSED, JobPhase.FAILED]);
    expect(await getJson(fleet.jobUrl)).toEqual({ status: 200, json: final.json });
    const listed = jobWorkersFromJson((await getJson(`${fleet.jobUrl}/workers`)).json);
    expect(listed.workers.map((w) => [w.workerId, w.state])).toEqual([
      ["worker-0", WorkerState.STOPPED],
      ["worker-1", WorkerState.LOST],
    ]);
    for (const member of [shard, worker0]) expect(await member.exited).toEqual({ code: 0, signal: null });
  });

  it("counts the eviction in /metrics, and `trainfleet status --watch` exits 1", async () => {
    const metrics = await scrape(fleet.metricsUrl);
    expect(checkMetrics(metrics)).toEqual({ code: 0, output: "" });
    const job = { job_id: jobId };
    expect(sampleValue(metrics, "trainfleet_member_evictions_total", { ...job, role: "worker", cause: "stream_closed" })).toBe(1);
    expect(sampleValue(metrics, "trainfleet_job_phase", { ...job, phase: "failed" })).toBe(1);
    expect(sampleValue(metrics, "trainfleet_live_workers", job)).toBe(0);
    const watched = await trainfleet(["status", fleet.jobUrl, "--watch"]);
    expect(watched.code).toBe(1);
    expect(watched.stdout).toContain(`job ${jobId}: FAILED (PauseTimeout)`);
  });

  it("a SIGTERM while the coordinator lingers ends it with the exit code of a job it failed itself, 20, its final word written", async () => {
    fleet.coordinator.kill("SIGTERM");
    expect(await fleet.coordinator.exited).toEqual({ code: 20, signal: null });
    expect(JSON.parse(readFileSync(finalWord, "utf8"))).toEqual({
      kind: "trainfleet.dev/job-end",
      phase: "Failed",
      reason: "PauseTimeout",
      message: expect.stringMatching(/^fewer than 2 workers \(workers.minWorkers\) for 3 s/),
    });
  });

  afterAll(async () => {
    // The coordinator is lingering; SIGTERM ends it.
    fleet?.coordinator.kill("SIGTERM");
    await fleet?.coordinator.exited;
  });
});
