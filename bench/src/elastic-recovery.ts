/**
 * `npm run bench:elastic`: what a change of membership costs a running job, against
 * restarting the whole job (what torchrun's re-rendezvous does: every worker restarts).
 * A real local fleet (coordinator, 2 dedicated shards, 4 workers on the cpu backend, a
 * small MLP) trains while, each round:
 *
 * 1. worker loss: one worker gets SIGKILL; timed from the kill to the new generation
 *    opening (status: generation up, reason Training) and to its first completed step;
 * 2. scale-up: a new worker process joins the 3 left; timed from its registration (the
 *    first status that shows it: the generation goes up, reason Rescaling) to the new
 *    generation opening and to its first completed step. The pause is that last interval
 *    less one step of the steady training just before (a step would have taken that long
 *    anyway);
 * 3. restart everything: the coordinator gets SIGTERM (it finishes the steps handed out and
 *    writes a just-in-time checkpoint), every process exits, and all of them start again at
 *    once, the coordinator with --resume; timed from the SIGTERM to the first completed step.
 *
 * Every mark is taken in this process (the signal sent, a status event received); the
 * coordinator's and shards' log timestamps say where the time went in between.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { JobPhase } from "@trainfleet/proto";
import { now } from "@trainfleet/testing/fleet/clock";
import type { FleetProcess, LogLine } from "@trainfleet/testing/fleet/fleet-process";
import type { StatusEvent } from "@trainfleet/testing/fleet/status-events";
import { BenchFleet } from "./bench-fleet.js";
import { median } from "./child.js";
import { freePort } from "./free-port.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    "steady-steps": { type: "string", default: "30" },
    hidden: { type: "string", default: "32" },
  },
});
const rounds = Number(values.rounds);
/** Steps of undisturbed training before each measurement, whose median step time is the reference. */
const steadySteps = Number(values["steady-steps"]);
const workers = 4;
const shards = 2;
// Stated, not left to the default: the output says a loss is noticed without it.
const leaseArgs = ["--lease-ms", "10000"];

function dataDir(): string {
  const result = spawnSync("bash", [fileURLToPath(new URL("../../scripts/fetch-data.sh", import.meta.url)), "--quiet"], {
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`fetch-data failed: ${result.stderr}`);
  return result.stdout.trim();
}

// Long enough never to end during the benchmark (10 epochs of 938 steps); evaluation never comes.
const jobFlags = [
  "--job-id",
  "elastic-bench",
  "--workers",
  String(workers),
  "--shards",
  String(shards),
  "--hidden",
  values.hidden,
  "--batch-size",
  "16",
  "--epochs",
  "10",
  "--eval-samples",
  "100",
  "--seed",
  "3",
];
const folder = mkdtempSync(join(tmpdir(), "trainfleet-bench-elastic-"));
const checkpoints = join(folder, "checkpoints");
const workerArgs = ["--backend", "cpu", "--data-dir", dataDir()];
const everyProcess: FleetProcess[] = [];
// One address for the coordinator of every fleet: a restart starts all processes at once.
const address = `127.0.0.1:${await freePort()}`;

function startFleet(index: number, coordinatorArgs: string[]): Promise<BenchFleet> {
  return BenchFleet.start(
    { index, logFolder: folder, address, coordinatorArgs: [...leaseArgs, ...coordinatorArgs], shards, workers, workerArgs },
    (member) => everyProcess.push(member),
  );
}

/** When a process logged a line (its pino time, Date.now() there). */
async function loggedAt(member: FleetProcess, message: string | RegExp, where: (line: LogLine) => boolean = () => true): Promise<number> {
  return (await member.log(message, where)).time as number;
}

/**
 * Waits for `steadySteps` more steps in one open generation of `size` workers, and returns
 * their median step time (status events may merge steps: each counts Δt / Δsteps).
 */
async function steady(fleet: BenchFleet, size: number): Promise<number> {
  const training = (s: StatusEvent["status"]) =>
    s.phase === JobPhase.RUNNING && s.reason === "Training" && s.message.includes(`on ${size} workers`);
  const first = await fleet.status.waitFor(`training on ${size} workers`, training, fleet.status.last?.index ?? 0);
  const end = await fleet.status.waitFor(`${steadySteps} steps`, (s) => s.step >= first.status.step + steadySteps, first.index);
  const window = fleet.status.events.slice(first.index, end.index + 1);
  if (!window.every((e) => e.status.generation === first.status.generation)) throw new Error("membership changed during a steady window");
  const changes = window.filter((e, i) => i === 0 || e.status.step !== window[i - 1]!.status.step);
  return median(changes.slice(1).map((e, i) => (e.at - changes[i]!.at) / (e.status.step - changes[i]!.status.step)));
}

/** The generation after `before` opens, then completes a step: both events, and the version it went on from. */
async function nextGeneration(
  fleet: BenchFleet,
  before: StatusEvent,
): Promise<{ changed: StatusEvent; opened: StatusEvent; stepped: StatusEvent; version: number }> {
  const changed = await fleet.status.waitFor("a new generation", (s) => s.generation > before.status.generation, before.index + 1);
  const generation = changed.status.generation;
  const opened = await fleet.status.waitFor(
    `generation ${generation} to open`,
    (s) => s.generation === generation && s.reason === "Training",
    changed.index,
  );
  const version = (await fleet.coordinator.log("generation opened", (l) => l.generation === generation)).version as number;
  const stepped = await fleet.status.waitFor(
    `a step of generation ${generation}`,
    (s) => s.generation === generation && s.step > version,
    opened.index,
  );
  return { changed, opened, stepped, version };
}

interface LossSample {
  stepMs: number;
  toOpen: number;
  toStep: number;
  /** The killed process's exit as seen here (the kernel has torn it down, its sockets closed). */
  gone: number;
  /** From the coordinator's and shards' logs: kill -> loss noticed -> shards configured -> generation opened -> first step. */
  noticed: number;
  shardsTold: number;
  opened: number;
  firstStep: number;
}

async function workerLoss(fleet: BenchFleet): Promise<LossSample> {
  const stepMs = await steady(fleet, workers);
  const victim = fleet.workers.shift()!;
  const victimId = (await victim.log("registered with the coordinator")).memberId as string;
  const before = fleet.status.last!;
  const killedAt = now();
  victim.kill("SIGKILL");
  const { opened, stepped } = await nextGeneration(fleet, before);
  await victim.exited;
  const generation = opened.status.generation;
  const lostAt = await loggedAt(fleet.coordinator, / was lost: /, (l) => l.memberId === victimId);
  const shardsConfigured = Math.max(
    ...(await Promise.all(fleet.shards.map((s) => loggedAt(s, "shard configured", (l) => l.generation === generation)))),
  );
  const openedAt = await loggedAt(fleet.coordinator, "generation opened", (l) => l.generation === generation);
  return {
    stepMs,
    toOpen: opened.at - killedAt,
    toStep: stepped.at - killedAt,
    gone: victim.exitedAt! - killedAt,
    noticed: lostAt - killedAt,
    shardsTold: shardsConfigured - lostAt,
    opened: openedAt - shardsConfigured,
    firstStep: stepped.at - openedAt,
  };
}

interface JoinSample {
  stepMs: number;
  toOpen: number;
  toStep: number;
  pause: number;
  /** From the logs: registered -> generation opened -> the joiner's first step done -> first completed step. */
  opened: number;
  joinerStep: number;
  firstStep: number;
  /** The compute part of the joiner's first step (a fresh process: cold kernels). */
  joinerComputeMs: number;
  /** Its own start before that, spawn to registration (modules, tf.js, the dataset), while the others train on. */
  joinerStart: number;
}

async function scaleUp(fleet: BenchFleet): Promise<JoinSample> {
  const stepMs = await steady(fleet, workers - 1);
  const before = fleet.status.last!;
  // Debug logs from the joiner only: its "step done" lines say when its first step ran.
  const joiner = fleet.addWorker(["--log-level", "debug"]);
  everyProcess.push(joiner);
  const { changed, opened, stepped } = await nextGeneration(fleet, before);
  const generation = opened.status.generation;
  const memberId = (await joiner.log("registered with the coordinator")).memberId as string;
  const registeredAt = await loggedAt(fleet.coordinator, "member registered", (l) => l.memberId === memberId);
  const openedAt = await loggedAt(fleet.coordinator, "generation opened", (l) => l.generation === generation);
  const joinerStep = await joiner.log("step done", (l) => l.generation === generation);
  const toStep = stepped.at - changed.at;
  return {
    stepMs,
    toOpen: opened.at - changed.at,
    toStep,
    pause: toStep - stepMs,
    opened: openedAt - registeredAt,
    joinerStep: (joinerStep.time as number) - openedAt,
    firstStep: stepped.at - (joinerStep.time as number),
    joinerComputeMs: joinerStep.computeMs as number,
    joinerStart: changed.at - joiner.startedAt,
  };
}

interface RestartSample {
  stepMs: number;
  toStep: number;
  /** stop -> coordinator exited (checkpoint written) -> every process exited -> the new coordinator listening -> all registered -> job resumed -> first step. */
  coordinatorExited: number;
  allExited: number;
  listening: number;
  registered: number;
  resumed: number;
  firstStep: number;
}

async function restartEverything(fleet: BenchFleet, index: number): Promise<{ sample: RestartSample; fleet: BenchFleet }> {
  const stepMs = await steady(fleet, workers);
  const stoppedAt = now();
  fleet.coordinator.kill("SIGTERM");
  await fleet.exited();
  // Each exit as it was seen here (`exited` waits for the output to end as well).
  const coordinatorExitedAt = fleet.coordinator.exitedAt!;
  const allExitedAt = Math.max(...fleet.started.map((member) => member.exitedAt!));
  await fleet.status.ended;
  const version = fleet.status.last?.status.lastCheckpointVersion;
  if (version === undefined)
    throw new Error(
      `SIGTERM left no checkpoint: ${fleet.status.last?.status.message}; the coordinator's last lines:\n${fleet.coordinator.output(10)}`,
    );
  const next = await startFleet(index, ["--resume", checkpoints]);
  const stepped = await next.status.waitFor("a step after the restart", (s) => s.phase === JobPhase.RUNNING && s.step > version);
  const listening = await loggedAt(next.coordinator, "coordinator listening");
  const registered = Math.max(...(await Promise.all(next.started.slice(1).map((m) => loggedAt(m, "registered with the coordinator")))));
  const resumedAt = await loggedAt(next.coordinator, "job resumed from its checkpoint");
  const sample = {
    stepMs,
    toStep: stepped.at - stoppedAt,
    coordinatorExited: coordinatorExitedAt - stoppedAt,
    allExited: allExitedAt - coordinatorExitedAt,
    listening: listening - allExitedAt,
    registered: registered - listening,
    resumed: resumedAt - registered,
    firstStep: stepped.at - resumedAt,
  };
  return { sample, fleet: next };
}

const ms = (value: number) => `${value.toFixed(0)} ms`;
const spread = (samples: number[]) => `${ms(median(samples))} | ${ms(Math.min(...samples))} | ${ms(Math.max(...samples))}`;

const losses: LossSample[] = [];
const joins: JoinSample[] = [];
const restarts: RestartSample[] = [];
const started = now();
let fleet: BenchFleet | undefined;
try {
  fleet = await startFleet(0, [...jobFlags, "--checkpoint-dir", checkpoints]);
  // Rounds interleave the three measurements, so that the machine's drift touches all alike.
  for (let round = 0; round < rounds; round++) {
    losses.push(await workerLoss(fleet));
    joins.push(await scaleUp(fleet));
    const restarted = await restartEverything(fleet, round + 1);
    restarts.push(restarted.sample);
    fleet = restarted.fleet;
    console.error(
      `round ${round + 1}/${rounds}: loss ${ms(losses.at(-1)!.toStep)}, join ${ms(joins.at(-1)!.toStep)}, restart ${ms(restarts.at(-1)!.toStep)}`,
    );
  }
} finally {
  fleet?.status.close();
  for (const member of everyProcess) member.kill("SIGKILL");
  await Promise.all(everyProcess.map((member) => member.exited));
}

const lossStep = median(losses.map((s) => s.toStep));
const restartStep = median(restarts.map((s) => s.toStep));
console.log(
  `trainfleet elastic recovery: node bench/dist/elastic-recovery.js --rounds ${rounds} --steady-steps ${steadySteps} --hidden ${values.hidden}`,
);
console.log(
  `Node ${process.version}, ${availableParallelism()} CPUs; 1 coordinator, ${shards} dedicated shards, ${workers} workers (cpu backend), MLP ${values.hidden} hidden, batch 16 per worker, --lease-ms 10000; ${rounds} rounds in ${((now() - started) / 1000).toFixed(0)} s; logs in ${folder}`,
);
console.log("");
console.log("| figure | samples | median | min | max | steady step before (median) |");
console.log("|---|---:|---:|---:|---:|---:|");
console.log(
  `| worker loss (SIGKILL) -> new generation open | ${rounds} | ${spread(losses.map((s) => s.toOpen))} | ${ms(median(losses.map((s) => s.stepMs)))} |`,
);
console.log(
  `| worker loss (SIGKILL) -> first completed step | ${rounds} | ${spread(losses.map((s) => s.toStep))} | ${ms(median(losses.map((s) => s.stepMs)))} |`,
);
console.log(
  `| scale-up 3 -> 4: registration -> new generation open | ${rounds} | ${spread(joins.map((s) => s.toOpen))} | ${ms(median(joins.map((s) => s.stepMs)))} |`,
);
console.log(
  `| scale-up 3 -> 4: registration -> first completed step | ${rounds} | ${spread(joins.map((s) => s.toStep))} | ${ms(median(joins.map((s) => s.stepMs)))} |`,
);
console.log(`| scale-up pause (the above less one steady step) | ${rounds} | ${spread(joins.map((s) => s.pause))} | |`);
console.log(
  `| restart everything (SIGTERM, checkpoint, --resume) -> first completed step | ${rounds} | ${spread(restarts.map((s) => s.toStep))} | ${ms(median(restarts.map((s) => s.stepMs)))} |`,
);
console.log("");
console.log(`restart everything / elastic worker-loss recovery: ${(restartStep / lossStep).toFixed(1)}x (medians)`);
console.log("");
console.log("Where the time goes (medians; from the processes' log timestamps):");
console.log(
  `- worker loss: the killed process gone ${ms(median(losses.map((s) => s.gone)))}; noticed by the coordinator ${ms(median(losses.map((s) => s.noticed)))}, shards configured for the new generation ${ms(median(losses.map((s) => s.shardsTold)))}, generation opened ${ms(median(losses.map((s) => s.opened)))}, first step completed ${ms(median(losses.map((s) => s.firstStep)))}`,
);
console.log(
  `- scale-up: (the new process's start, spawn to registration: ${ms(median(joins.map((s) => s.joinerStart)))}, not counted) registered -> generation opened ${ms(median(joins.map((s) => s.opened)))}, the joiner's first step done ${ms(median(joins.map((s) => s.joinerStep)))} (its compute ${ms(median(joins.map((s) => s.joinerComputeMs)))}), first step completed ${ms(median(joins.map((s) => s.firstStep)))}`,
);
console.log(
  `- restart everything: coordinator exited (steps finished, checkpoint written) ${ms(median(restarts.map((s) => s.coordinatorExited)))}, every other process exited ${ms(median(restarts.map((s) => s.allExited)))}, all started again: the coordinator listening ${ms(median(restarts.map((s) => s.listening)))}, the last member registered ${ms(median(restarts.map((s) => s.registered)))}, job resumed ${ms(median(restarts.map((s) => s.resumed)))}, first step completed ${ms(median(restarts.map((s) => s.firstStep)))}`,
);
