/**
 * Stragglers with real processes and real signals: a worker frozen with SIGSTOP keeps its
 * lease (a long one) but stops pushing; the shards count the step deadlines it misses, and
 * the coordinator evicts it at the limit, with the reason in the status and the metrics,
 * and goes on without it. Thawed with SIGCONT, the same process learns it was evicted,
 * registers again, and trains in a later generation until the job finishes.
 */

import { JobPhase, WorkerState } from "@trainfleet/proto";
import { sampleValue } from "@trainfleet/testing/fixtures/prometheus-text";
import { processGroup } from "@trainfleet/testing/fleet/fleet-process";
import { StatusEvents } from "@trainfleet/testing/fleet/status-events";
import { afterAll, describe, expect, it } from "vitest";

const { start, stop: stopProcesses } = processGroup();
let events: StatusEvents | undefined;
afterAll(async () => {
  events?.close();
  await stopProcesses();
});

describe("a worker frozen with SIGSTOP", () => {
  it("is evicted as a straggler well within its lease, and rejoins after SIGCONT", async () => {
    const leaseMs = 60_000;
    const coordinator = start("coordinator", [
      "coordinator",
      "--insecure",
      ...["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--linger-ms", "60000", "--lease-ms", String(leaseMs)],
      // More steps than run during the test, however fast the machine: the test ends the job itself.
      ...[
        "--job-id",
        "stragglers",
        "--workers",
        "2",
        "--shards",
        "1",
        "--hidden",
        "16",
        "--batch-size",
        "16",
        "--max-steps",
        "1000000",
        "--eval-samples",
        "200",
      ],
      // Deadlines a busy CI machine does not miss with a live worker (300 ms did: the other worker was evicted too).
      ...["--step-deadline-ms", "1000", "--max-missed-deadlines", "3"],
    ]);
    const address = (await coordinator.log("coordinator listening")).address as string;
    const { url, metrics } = (await coordinator.log("status API listening")) as unknown as { url: string; metrics: string };
    events = await StatusEvents.open(`${url}/watch`);
    start("ps-0", ["ps", "--insecure", "--coordinator", address, "--shard-index", "0"]);
    const workers = [0, 1].map((i) => start(`worker-${i}`, ["worker", "--insecure", "--coordinator", address, "--backend", "cpu"]));
    await events.waitFor("training", (s) => s.phase === JobPhase.RUNNING && s.step >= 50);

    const frozen = workers[1]!;
    const frozenId = (await frozen.log("registered with the coordinator")).memberId as string;
    const frozenAt = Date.now();
    frozen.kill("SIGSTOP");
    const evicted = await events.waitFor("the eviction", (s) =>
      s.workers.some((w) => w.workerId === frozenId && w.state === WorkerState.LOST),
    );
    const detectionMs = Date.now() - frozenAt;
    // Three or four deadlines of a second, a shard heartbeat (at most a second) and a check (at most half a second) later; far from the lease.
    expect(detectionMs).toBeLessThan(leaseMs / 4);
    expect(evicted.status).toMatchObject({ generation: 2, phase: JobPhase.RUNNING });
    // The job's message moves on with the next generation (a watcher may see that one first); the worker keeps why it went.
    const lost = evicted.status.workers.find((w) => w.workerId === frozenId)!;
    expect(lost.lastErrorReason).toBe("Straggler");
    expect(lost.lastErrorMessage).toMatch(
      new RegExp(
        `^worker ${frozenId} \\(rank \\d\\) was evicted: it missed \\d+ step deadlines of 1000 ms in a row \\(workers.stepDeadlineMs, workers.maxMissedDeadlines 3\\)$`,
      ),
    );
    const during = await events.waitFor("steps without the frozen worker", (s) => s.generation === 2 && s.step >= evicted.status.step + 20);
    expect(during.status.workers.filter((w) => w.state === WorkerState.TRAINING)).toHaveLength(1);
    const scrape = await (await fetch(metrics)).text();
    expect(sampleValue(scrape, "trainfleet_member_evictions_total", { job_id: "stragglers", role: "worker", cause: "straggler" })).toBe(1);

    frozen.kill("SIGCONT");
    const rejoined = await frozen.log("the coordinator marked this worker lost while it was alive; registering again");
    expect(rejoined.memberId).toBe(frozenId);
    const back = await events.waitFor(
      "the rejoin",
      (s) => s.generation >= 3 && s.workers.filter((w) => w.state === WorkerState.TRAINING).length === 2,
    );
    expect(back.status.workers.find((w) => w.workerId === frozenId)?.state).toBe(WorkerState.LOST);
    await events.waitFor("steps with the rejoined worker", (s) => s.step >= back.status.step + 20);
    coordinator.kill("SIGTERM");
    await events.ended;
    const final = events.events.at(-1)!.status;
    expect(final).toMatchObject({ phase: JobPhase.FAILED, reason: "Terminated" });
    for (const worker of workers) expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect(frozen.lines.filter((l) => l.msg === "registered with the coordinator")).toHaveLength(2);
  }, 180_000);
});
