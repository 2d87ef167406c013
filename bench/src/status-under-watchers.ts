/**
 * `npm run bench:watchers`: the coordinator's status API while many clients follow the job.
 * It starts the default job as a user does (`trainfleet run`, mutual TLS between the job's
 * processes), opens --watchers event streams on `GET /v1/jobs/ID/watch` with the job's read
 * token as soon as the status URL is printed (in a child process of their own, which keeps
 * them all reading), and samples `GET /v1/jobs/ID` every --interval-ms on one keep-alive
 * socket of this process until the job ends. Beside it, in the same invocation, the same
 * job with no streams (still sampling GET); sittings interleaved, the order alternating.
 *
 * Printed per configuration, as the median over sittings with their range: the GET latency
 * (p50, p99, max) of the samples taken while the job trained (phase RUNNING, every stream
 * already answered), the job's wall time, the coordinator's peak RSS (VmHWM of its
 * process), what became of the streams, and the sha256 of the trained parameters, which
 * must be the same in every run. The coordinator serves at most --max-watchers streams
 * (default 256): the benchmark raises it, for both configurations alike, through
 * TRAINFLEET_MAX_WATCHERS (the coordinator's own variable, which `trainfleet run` passes on).
 */
import type { ChildProcess } from "node:child_process";
import type { IncomingMessage } from "node:http";
import { Agent, request } from "node:http";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { median, start } from "./child.js";
import type { FinishedJob } from "./cli-job.js";
import { cpuSeconds, ensureFashionMnist, finishedJob, parameterCheck, peakRssBytes, removeJob, startJob } from "./cli-job.js";
import { percentile, spread } from "./spread.js";
import type { WatchersDone, WatchersSettled, WatchOrder } from "./sse-watchers.js";

const { values } = parseArgs({
  options: {
    sittings: { type: "string", default: "3" },
    watchers: { type: "string", default: "500" },
    "interval-ms": { type: "string", default: "50" },
    "max-watchers": { type: "string" },
  },
});
const sittings = Number(values.sittings);
const watchers = Number(values.watchers);
const intervalMs = Number(values["interval-ms"]);
// Room for `trainfleet run`'s own stream besides the benchmark's.
const maxWatchers = values["max-watchers"] === undefined ? watchers + 8 : Number(values["max-watchers"]);
const target = { watchers: 500, p99Ms: 100 };

interface Sample {
  at: number;
  ms: number;
  phase: string;
}

interface RunFigures {
  watchers: number;
  /** GET latencies while the job trained with every stream answered. */
  training: number[];
  samples: number;
  failedGets: number;
  newSockets: number;
  wallMs: number;
  coordinatorPeakRss: number | undefined;
  /** The coordinator's CPU time, as last read before it exited. */
  coordinatorCpuSeconds: number | undefined;
  settled: WatchersSettled | undefined;
  done: WatchersDone | undefined;
  samplerLoopP99Ms: number;
  job: FinishedJob;
}

/** One GET on the keep-alive agent: its latency to the last byte, and the body. */
function get(url: string, token: string, agent: Agent): Promise<{ status: number; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers: { authorization: `Bearer ${token}` } }, (res: IncomingMessage) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

async function oneRun(streams: number): Promise<RunFigures> {
  const job = await startJob([], { ...process.env, TRAINFLEET_MAX_WATCHERS: String(maxWatchers) });
  let child: ChildProcess | undefined;
  let settledAt = streams === 0 ? 0 : Number.POSITIVE_INFINITY;
  let settled: WatchersSettled | undefined;
  let resolveDone: (done: WatchersDone) => void = () => {};
  const done = new Promise<WatchersDone>((resolve) => (resolveDone = resolve));
  if (streams > 0) {
    child = start("./sse-watchers.js", []);
    child.on("message", (m: WatchersSettled | WatchersDone) => {
      if (m.type === "settled") {
        settled = m;
        settledAt = performance.now();
      } else resolveDone(m);
    });
    child.send({ watchUrl: `${job.statusUrl}/watch`, token: job.readToken, count: streams } satisfies WatchOrder);
  }
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const samples: Sample[] = [];
  let failedGets = 0;
  let newSockets = 0;
  let peak: number | undefined;
  let cpu: number | undefined;
  let exited = false;
  void job.exited.then(() => (exited = true));
  for (let tick = performance.now(); !exited; ) {
    const begun = performance.now();
    try {
      const { status, body, reused } = await get(job.statusUrl, job.readToken, agent);
      const ms = performance.now() - begun;
      if (!reused) newSockets++;
      if (status !== 200) throw new Error(`GET ${job.statusUrl} answered ${status}: ${body}`);
      const phase = /"phase":"(\w+)"/.exec(body)?.[1] ?? "?";
      samples.push({ at: begun, ms, phase });
      if (phase === "JOB_PHASE_SUCCEEDED" || phase === "JOB_PHASE_FAILED") break;
    } catch (error) {
      // The coordinator is gone (the job ended between two samples) or refused: counted, not timed.
      failedGets++;
      if (failedGets > 20 && samples.length === 0) throw error;
    }
    if (job.coordinatorPid !== undefined) {
      peak = Math.max(peak ?? 0, peakRssBytes(job.coordinatorPid) ?? 0);
      cpu = cpuSeconds(job.coordinatorPid) ?? cpu;
    }
    tick += intervalMs;
    await sleep(Math.max(0, tick - performance.now()));
  }
  loop.disable();
  agent.destroy();
  const { code, wallMs } = await job.exited;
  const finished = finishedJob(job, code);
  let report: WatchersDone | undefined;
  if (child !== undefined) {
    report = await Promise.race([done, sleep(30_000).then(() => undefined)]);
    if (report === undefined) child.kill();
  }
  removeJob(job);
  return {
    watchers: streams,
    training: samples.filter((s) => s.phase === "JOB_PHASE_RUNNING" && s.at >= settledAt).map((s) => s.ms),
    samples: samples.length,
    failedGets,
    newSockets,
    wallMs,
    coordinatorPeakRss: peak === 0 ? undefined : peak,
    coordinatorCpuSeconds: cpu,
    settled,
    done: report,
    samplerLoopP99Ms: loop.percentile(99) / 1e6,
    job: finished,
  };
}

ensureFashionMnist();
const configurations = [0, watchers];
const mib = 1024 * 1024;
console.log(
  `trainfleet status API under ${watchers} SSE watchers while the default job trains (trainfleet run, mutual TLS): GET /v1/jobs/ID every ${intervalMs} ms on one keep-alive socket; ${sittings} sittings, order alternating; TRAINFLEET_MAX_WATCHERS=${maxWatchers} in both; node ${process.version}`,
);
const runs: RunFigures[] = [];
for (let sitting = 0; sitting < sittings; sitting++) {
  const order = sitting % 2 === 0 ? configurations : [...configurations].reverse();
  for (const streams of order) {
    const run = await oneRun(streams);
    runs.push(run);
    const s = run.settled;
    const d = run.done;
    console.log(
      `  sitting ${sitting + 1}, ${streams} watchers: ${run.training.length} GETs while training, p50 ${percentile(run.training, 50).toFixed(1)} ms, p99 ${percentile(run.training, 99).toFixed(1)} ms, max ${Math.max(...run.training).toFixed(1)} ms; wall ${(run.wallMs / 1000).toFixed(1)} s; coordinator peak RSS ${run.coordinatorPeakRss === undefined ? "unknown" : `${(run.coordinatorPeakRss / mib).toFixed(0)} MiB`}, CPU ${run.coordinatorCpuSeconds?.toFixed(1) ?? "unknown"} s` +
        (s === undefined
          ? ""
          : `; streams: ${s.connected} connected, refused ${JSON.stringify(s.refused)}, failed ${s.failed.length}${d === undefined ? ", no final report (killed)" : `, ${d.endedWithFinal} ended with the final status, ${d.endedWithoutFinal} ended without it, ${d.dropped} dropped; events per stream ${d.events.min}/${d.events.median}/${d.events.max} (min/median/max), ${d.megabytes.toFixed(0)} MB read (${((d.megabytes * 1000) / Math.max(1, d.connected * d.events.median)).toFixed(1)} kB per event), watcher process loop delay p99 ${d.loopDelayP99Ms.toFixed(1)} ms, ${d.cpuSeconds.toFixed(1)} s CPU`}`) +
        `; sampler loop delay p99 ${run.samplerLoopP99Ms.toFixed(1)} ms, ${run.newSockets} GET socket(s), ${run.failedGets} failed GETs; accuracy ${(run.job.testAccuracy * 100).toFixed(2)}% after ${run.job.totalSteps} steps`,
    );
  }
}

console.log(
  "\n| watchers | GETs while training (per sitting) | GET p50 | GET p99 | GET max | job wall time | coordinator peak RSS | coordinator CPU | streams connected / refused / dropped / ended with final status | events per stream (median) | sampler loop delay p99 |",
);
console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|");
for (const streams of configurations) {
  const mine = runs.filter((r) => r.watchers === streams);
  const rss = mine.flatMap((r) => (r.coordinatorPeakRss === undefined ? [] : [r.coordinatorPeakRss / mib]));
  const cpu = mine.flatMap((r) => (r.coordinatorCpuSeconds === undefined ? [] : [r.coordinatorCpuSeconds]));
  const streamCell =
    streams === 0
      ? "-"
      : mine
          .map((r) =>
            r.settled === undefined
              ? "never settled"
              : `${r.settled.connected} / ${Object.values(r.settled.refused).reduce((a, b) => a + b, 0) + r.settled.failed.length} / ${r.done?.dropped ?? "?"} / ${r.done?.endedWithFinal ?? "?"}`,
          )
          .join("; ");
  console.log(
    `| ${streams} | ${median(mine.map((r) => r.training.length))} | ${spread(
      mine.map((r) => percentile(r.training, 50)),
      " ms",
    )} | ${spread(
      mine.map((r) => percentile(r.training, 99)),
      " ms",
    )} | ${spread(
      mine.map((r) => Math.max(...r.training)),
      " ms",
    )} | ${spread(
      mine.map((r) => r.wallMs / 1000),
      " s",
    )} | ${rss.length === 0 ? "unknown" : spread(rss, " MiB", 0)} | ${cpu.length === 0 ? "unknown" : spread(cpu, " s")} | ${streamCell} | ${
      streams === 0
        ? "-"
        : spread(
            mine.map((r) => r.done?.events.median ?? Number.NaN),
            "",
            0,
          )
    } | ${spread(
      mine.map((r) => r.samplerLoopP99Ms),
      " ms",
    )} |`,
  );
}

// Per-sitting ratios against the baseline run of the same sitting.
const bySitting = Array.from({ length: sittings }, (_, i) => runs.slice(2 * i, 2 * i + 2));
const ratio = (figure: (r: RunFigures) => number) =>
  bySitting.map((pair) => figure(pair.find((r) => r.watchers === watchers)!) / figure(pair.find((r) => r.watchers === 0)!));
console.log(
  `\n${watchers} watchers / none, per sitting: GET p50 ${spread(
    ratio((r) => percentile(r.training, 50)),
    "x",
    2,
  )}, GET p99 ${spread(
    ratio((r) => percentile(r.training, 99)),
    "x",
    2,
  )}, job wall time ${spread(
    ratio((r) => r.wallMs),
    "x",
    2,
  )}`,
);
const p99s = runs.filter((r) => r.watchers === watchers).map((r) => percentile(r.training, 99));
if (watchers >= target.watchers)
  console.log(
    `target (GET /v1/jobs/ID p99 under ${target.p99Ms} ms with ${target.watchers} watchers while a job trains): ${median(p99s) < target.p99Ms ? "met" : "MISSED"} by the median sitting (${median(p99s).toFixed(1)} ms); worst sitting ${Math.max(...p99s).toFixed(1)} ms`,
  );
console.log(parameterCheck(runs.map((r) => r.job.parametersSha256)));
