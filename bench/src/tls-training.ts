/**
 * `npm run bench:tls-training`: the cost of mutual TLS on a whole training step. The default
 * job (`trainfleet run` with no flags: MLP 784-256-10, 2 workers, 2 dedicated shards, 3
 * epochs) over mutual TLS, its default, and with --insecure (plaintext), in the same
 * invocation, sittings interleaved (plaintext first in even sittings, TLS first in odd ones)
 * so that machine noise falls on both alike.
 *
 * The step time is the coordinator's: the benchmark follows the job's status event stream
 * (`GET /v1/jobs/ID/watch`, the stream `trainfleet run` itself follows) and takes the time
 * between completed steps as the events arrive (a gap of d steps counts d times, at 1/d of
 * its length), the first 10% of the steps left out as warm-up. Beside it: the workers' own
 * step time (compute + push/pull, the EWMA each worker reports in the status), the run's wall
 * time, the final test accuracy, and the sha256 of parameters.f32, which must be the same
 * in every run: TLS changes how bytes travel, never which.
 */
import type { IncomingMessage } from "node:http";
import { request } from "node:http";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { median } from "./child.js";
import type { FinishedJob, RunningJob } from "./cli-job.js";
import { ensureFashionMnist, finishedJob, parameterCheck, removeJob, startJob } from "./cli-job.js";
import { spread } from "./spread.js";

const { values } = parseArgs({ options: { sittings: { type: "string", default: "3" } } });
const sittings = Number(values.sittings);
const warmUpShare = 0.1;

type Mode = "plaintext" | "tls";

interface StatusEvent {
  at: number;
  step: number;
  phase: string;
  /** Means over the workers of what each reports (EWMA): step time = compute + communicate (push, pull and the wait). */
  workerStepMs: number;
  workerComputeMs: number;
  workerCommunicateMs: number;
}

interface RunFigures {
  mode: Mode;
  wallMs: number;
  /** Median per-step time from the status stream (warm-up left out). */
  stepMs: number;
  /** The training time (first to last event while RUNNING) over the steps it covered. */
  meanStepMs: number;
  workerStepMs: number;
  workerComputeMs: number;
  workerCommunicateMs: number;
  job: FinishedJob;
}

/** Follows the job's status event stream to its end, stamping each event as it arrives. */
function follow(job: RunningJob): Promise<StatusEvent[]> {
  return new Promise((resolve, reject) => {
    const events: StatusEvent[] = [];
    const req = request(
      `${job.statusUrl}/watch`,
      { headers: { authorization: `Bearer ${job.readToken}`, accept: "text/event-stream" } },
      (res: IncomingMessage) => {
        if (res.statusCode !== 200) return reject(new Error(`GET ${job.statusUrl}/watch answered ${res.statusCode}`));
        res.setEncoding("utf8");
        let pending = "";
        res.on("data", (chunk: string) => {
          const at = performance.now();
          pending += chunk;
          for (let end = pending.indexOf("\n\n"); end >= 0; end = pending.indexOf("\n\n")) {
            const data = /^data: (.*)$/m.exec(pending.slice(0, end))?.[1];
            pending = pending.slice(end + 2);
            if (data === undefined) continue;
            const status = JSON.parse(data) as {
              step?: string | number;
              phase?: string;
              workers?: Array<{ stepTimeMs?: number; computeMs?: number; communicateMs?: number }>;
            };
            // Workers that have reported a step (the fields are 0 before the first report).
            const workers = (status.workers ?? []).filter((w) => (w.stepTimeMs ?? 0) > 0);
            const mean = (field: (w: (typeof workers)[number]) => number | undefined) =>
              workers.length === 0 ? Number.NaN : workers.reduce((sum, w) => sum + (field(w) ?? 0), 0) / workers.length;
            events.push({
              at,
              step: Number(status.step ?? 0),
              phase: status.phase ?? "?",
              workerStepMs: mean((w) => w.stepTimeMs),
              workerComputeMs: mean((w) => w.computeMs),
              workerCommunicateMs: mean((w) => w.communicateMs),
            });
          }
        });
        res.on("end", () => resolve(events));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

function medianOf(events: readonly StatusEvent[], figure: (e: StatusEvent) => number): number {
  return median(events.map(figure).filter((ms) => !Number.isNaN(ms)));
}

async function oneRun(mode: Mode): Promise<RunFigures> {
  const job = await startJob(mode === "tls" ? [] : ["--insecure"]);
  const events = await follow(job);
  const { code, wallMs } = await job.exited;
  const finished = finishedJob(job, code);
  removeJob(job);
  const running = events.filter((e) => e.phase === "JOB_PHASE_RUNNING");
  const warm = running.filter((e) => e.step >= finished.totalSteps * warmUpShare);
  const perStep: number[] = [];
  for (let i = 1; i < warm.length; i++) {
    const steps = warm[i]!.step - warm[i - 1]!.step;
    for (let k = 0; k < steps; k++) perStep.push((warm[i]!.at - warm[i - 1]!.at) / steps);
  }
  const first = running[0]!;
  const last = running.at(-1)!;
  return {
    mode,
    wallMs,
    stepMs: median(perStep),
    meanStepMs: (last.at - first.at) / (last.step - first.step),
    workerStepMs: medianOf(warm, (e) => e.workerStepMs),
    workerComputeMs: medianOf(warm, (e) => e.workerComputeMs),
    workerCommunicateMs: medianOf(warm, (e) => e.workerCommunicateMs),
    job: finished,
  };
}

ensureFashionMnist();
console.log(
  `trainfleet default job (trainfleet run, no flags), mutual TLS vs --insecure: ${sittings} sittings, plaintext first in even sittings, TLS first in odd; node ${process.version}`,
);
const runs: RunFigures[] = [];
for (let sitting = 0; sitting < sittings; sitting++) {
  const order: Mode[] = sitting % 2 === 0 ? ["plaintext", "tls"] : ["tls", "plaintext"];
  for (const mode of order) {
    const run = await oneRun(mode);
    runs.push(run);
    console.log(
      `  sitting ${sitting + 1}, ${mode}: wall ${(run.wallMs / 1000).toFixed(1)} s, step ${run.stepMs.toFixed(2)} ms (median), ${run.meanStepMs.toFixed(2)} ms (mean), workers' own step ${run.workerStepMs.toFixed(2)} ms (compute ${run.workerComputeMs.toFixed(2)}, push/pull ${run.workerCommunicateMs.toFixed(2)}); accuracy ${(run.job.testAccuracy * 100).toFixed(2)}% after ${run.job.totalSteps} steps`,
    );
  }
}

const of = (mode: Mode) => runs.filter((r) => r.mode === mode);
const bySitting = Array.from({ length: sittings }, (_, i) => runs.slice(2 * i, 2 * i + 2));
const ratio = (figure: (r: RunFigures) => number) =>
  bySitting.map((pair) => figure(pair.find((r) => r.mode === "tls")!) / figure(pair.find((r) => r.mode === "plaintext")!));
console.log(
  "\n| configuration | wall time | step (coordinator, median) | step (training time / steps) | workers' own step | their compute | their push/pull (and wait) | test accuracy |",
);
console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
for (const mode of ["plaintext", "tls"] as const)
  console.log(
    `| ${mode === "tls" ? "mutual TLS (default)" : "plaintext (--insecure)"} | ${spread(
      of(mode).map((r) => r.wallMs / 1000),
      " s",
    )} | ${spread(
      of(mode).map((r) => r.stepMs),
      " ms",
      2,
    )} | ${spread(
      of(mode).map((r) => r.meanStepMs),
      " ms",
      2,
    )} | ${spread(
      of(mode).map((r) => r.workerStepMs),
      " ms",
      2,
    )} | ${spread(
      of(mode).map((r) => r.workerComputeMs),
      " ms",
      2,
    )} | ${spread(
      of(mode).map((r) => r.workerCommunicateMs),
      " ms",
      2,
    )} | ${[...new Set(of(mode).map((r) => `${(r.job.testAccuracy * 100).toFixed(2)}%`))].join(", ")} |`,
  );
console.log(
  `| TLS / plaintext, per sitting | ${spread(
    ratio((r) => r.wallMs),
    "x",
    2,
  )} | ${spread(
    ratio((r) => r.stepMs),
    "x",
    2,
  )} | ${spread(
    ratio((r) => r.meanStepMs),
    "x",
    2,
  )} | ${spread(
    ratio((r) => r.workerStepMs),
    "x",
    2,
  )} | ${spread(
    ratio((r) => r.workerComputeMs),
    "x",
    2,
  )} | ${spread(
    ratio((r) => r.workerCommunicateMs),
    "x",
    2,
  )} | |`,
);
console.log(parameterCheck(runs.map((r) => r.job.parametersSha256)));
