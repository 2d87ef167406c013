/**
 * Workers that fail for a reason no new assignment mends, with real processes: each
 * reports why before it exits (CoordinatorService.ReportFailure), and the job fails within
 * seconds with reason WorkerFailed and the worker's own words in the status API, instead
 * of waiting out workers.pauseTimeoutSeconds (300 s by default) with a PauseTimeout that
 * hides the cause. The coordinator and the shard run normally; only the workers are
 * broken: their data folder is empty.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JsonValue } from "@bufbuild/protobuf";
import { JobPhase, jobStatusFromJson, WorkerState } from "@trainfleet/proto";
import { sampleValue } from "@trainfleet/testing/fixtures/prometheus-text";
import { processGroup } from "@trainfleet/testing/fleet/fleet-process";
import { trainfleet } from "@trainfleet/testing/fleet/run-fleet";
import { StatusEvents } from "@trainfleet/testing/fleet/status-events";
import { afterAll, describe, expect, it } from "vitest";

const { start, stop: stopProcesses } = processGroup();
const streams: StatusEvents[] = [];
afterAll(async () => {
  for (const stream of streams) stream.close();
  await stopProcesses();
});

/** A coordinator of a small job (2 workers, 1 shard, the default pause timeout of 300 s) that serves its final status for a minute, and its shard. */
async function startJob(jobId: string, extra: string[] = []) {
  const coordinator = start(`coordinator ${jobId}`, [
    "coordinator",
    "--insecure",
    ...["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--linger-ms", "60000"],
    ...["--job-id", jobId, "--workers", "2", "--shards", "1", "--hidden", "16", "--batch-size", "16", "--eval-samples", "200"],
    ...extra,
  ]);
  const address = (await coordinator.log("coordinator listening")).address as string;
  const { url, metrics } = (await coordinator.log("status API listening")) as unknown as { url: string; metrics: string };
  const events = await StatusEvents.open(`${url}/watch`);
  streams.push(events);
  const shard = start(`ps-0 ${jobId}`, ["ps", "--insecure", "--coordinator", address, "--shard-index", "0"]);
  return { coordinator, address, jobUrl: url, metricsUrl: metrics, events, shard };
}

/** `promise`, or a failure naming `what` after `ms` (without the reports, the job would wait 300 s). */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

const emptyDataDir = () => mkdtempSync(join(tmpdir(), "trainfleet-no-data-"));
const notFound = (dir: string) => `Fashion-MNIST not found. Searched:\n  ${dir} (missing all four files)\n`;

describe("workers that cannot load their data", () => {
  it("fail the job within seconds with reason WorkerFailed and the data error in GET /v1/jobs/{id}, in `trainfleet status --json` and in /metrics", async () => {
    const job = await startJob("no-data");
    const dataDir = emptyDataDir();
    const workers = ["a", "b"].map((host) =>
      start(`worker ${host}`, [
        "worker",
        "--insecure",
        "--coordinator",
        job.address,
        "--backend",
        "cpu",
        "--data-dir",
        dataDir,
        "--host",
        `worker-${host}`,
      ]),
    );
    await within(20_000, "the job's end", job.events.ended);
    const final = job.events.events.at(-1)!;
    expect(final.status).toMatchObject({ phase: JobPhase.FAILED, reason: "WorkerFailed", workerFailures: 2, step: 0 });
    // A worker opens the job's data when its assignment names it: each registered, then was lost saying why.
    expect(final.status.workers.map((w) => [w.host, w.state, w.lastErrorReason]).sort()).toEqual([
      ["worker-a", WorkerState.LOST, "DataUnavailable"],
      ["worker-b", WorkerState.LOST, "DataUnavailable"],
    ]);
    expect(final.status.message).toMatch(
      /^workers keep failing: 2 fatal worker failures \(DataUnavailable x2\) and no step completed since the coordinator started, as many as workers\.replicas \(2\); the last, from worker worker-\d \(host worker-[ab]\): DataUnavailable: /,
    );
    expect(final.status.message).toContain(`DataUnavailable: ${notFound(dataDir)}`);
    // The status API's answer is the final status, and so is what `trainfleet status --json` prints.
    const response = await fetch(job.jobUrl);
    expect(response.status).toBe(200);
    const json = (await response.json()) as JsonValue;
    expect(json).toEqual(final.json);
    const printed = await trainfleet(["status", job.jobUrl, "--json"]);
    expect(printed.code).toBe(0);
    expect(jobStatusFromJson(JSON.parse(printed.stdout) as JsonValue)).toMatchObject({
      phase: JobPhase.FAILED,
      reason: "WorkerFailed",
      message: final.status.message,
    });
    const metrics = await (await fetch(job.metricsUrl)).text();
    expect(sampleValue(metrics, "trainfleet_worker_failures_total", { job_id: "no-data", reason: "DataUnavailable" })).toBe(2);
    // Each worker said why, reported it, and exited 1; the shard was told to stop and exited 0.
    for (const worker of workers) {
      expect(await worker.exited).toEqual({ code: 1, signal: null });
      expect(worker.output()).toContain(`trainfleet: ${notFound(dataDir)}`);
      expect(worker.lines.find((l) => l.msg === "reported the failure to the coordinator")).toMatchObject({ reason: "DataUnavailable" });
    }
    expect(await job.shard.exited).toEqual({ code: 0, signal: null });
    job.coordinator.kill("SIGTERM");
    expect((await job.coordinator.exited).signal).toBeNull();
  });
});

describe("a job paused below min_workers whose replacement worker fails each time", () => {
  it("fails with WorkerFailed at the second failure, instead of waiting out the pause, with the failures counted in the status meanwhile", async () => {
    const job = await startJob("crash-loop", ["--min-workers", "2", "--epochs", "3"]);
    const worker = (name: string, extra: string[] = []) =>
      start(name, ["worker", "--insecure", "--coordinator", job.address, "--backend", "cpu", "--host", name, ...extra]);
    const [survivor, victim] = [worker("worker-a"), worker("worker-b")];
    await job.events.waitFor("training", (s) => s.phase === JobPhase.RUNNING && s.step >= 2);
    victim.kill("SIGKILL");
    const paused = await job.events.waitFor("paused", (s) => s.phase === JobPhase.PAUSED);
    expect(paused.status).toMatchObject({ reason: "NotEnoughWorkers", workerFailures: 0 });
    const dataDir = emptyDataDir();
    const first = worker("worker-b-2", ["--data-dir", dataDir]);
    expect(await first.exited).toEqual({ code: 1, signal: null });
    const counted = await within(
      10_000,
      "the first failure counted",
      job.events.waitFor("the first failure", (s) => s.workerFailures === 1),
    );
    expect(counted.status).toMatchObject({ phase: JobPhase.PAUSED, reason: "NotEnoughWorkers" });
    const second = worker("worker-b-3", ["--data-dir", dataDir]);
    expect(await second.exited).toEqual({ code: 1, signal: null });
    await within(10_000, "the job's end", job.events.ended);
    const final = job.events.events.at(-1)!.status;
    expect(final).toMatchObject({ phase: JobPhase.FAILED, reason: "WorkerFailed", workerFailures: 2 });
    expect(final.message).toMatch(
      /^workers keep failing: 2 fatal worker failures \(DataUnavailable x2\) and no step completed since step \d+, as many as workers\.replicas \(2\); the last, from worker worker-\d+ \(host worker-b-3\): DataUnavailable: Fashion-MNIST not found/,
    );
    // The replacements registered, then failed when they opened the job's data.
    expect(Object.fromEntries(final.workers.map((w) => [w.host, w.state]))).toEqual({
      "worker-a": WorkerState.STOPPED,
      "worker-b": WorkerState.LOST,
      "worker-b-2": WorkerState.LOST,
      "worker-b-3": WorkerState.LOST,
    });
    expect(await survivor.exited).toEqual({ code: 0, signal: null });
    expect(await job.shard.exited).toEqual({ code: 0, signal: null });
    job.coordinator.kill("SIGTERM");
    expect((await job.coordinator.exited).signal).toBeNull();
  });
});
