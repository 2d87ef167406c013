/**
 * A worker process: choose the compute backend, join the job, and follow the
 * coordinator's assignments until Stop. Assignments are read on their own loop so that a
 * Stop, a newer generation, or the coordinator going away interrupts a step that is
 * waiting on the network.
 *
 * Generations: an assignment of a newer generation (a worker joined or left) abandons the
 * step in flight and every queued step of the older one; the process, its model and its
 * dataset stay. A step that fails on its own (a shard closed for the next generation
 * before the coordinator told this worker) waits for that next assignment, for a bounded
 * time. A worker the coordinator marked lost while it lived (a partition) registers again;
 * so does one whose connection to the coordinator broke without a Stop (a partition long
 * enough for gRPC's keepalive to give up, or a restarted coordinator): registering retries
 * for a while, so a coordinator that is really gone still ends the process, only later.
 *
 * Fatal errors (no new assignment mends them: the data set cannot be loaded, the model
 * cannot be built, a gradient is not finite, a bug) end the process, after a report to the
 * coordinator (worker-failure.ts) while the session is still open, or by host when the
 * worker fails before registering. Stop, SIGTERM and a coordinator that cannot be reached
 * or refuses to register the worker end it without one.
 */

import type { SourceOptions } from "@trainfleet/artifacts";
import type { AssignmentsResponse, TransportSecurity } from "@trainfleet/proto";
import { Code, MemberRole, peerMismatch, TrainfleetError } from "@trainfleet/proto";
import type { Logger, MemberSession } from "@trainfleet/runtime";
import { AsyncQueue, abortableDelay, joinJob, logContext } from "@trainfleet/runtime";
import type { BackendChoice } from "./compute/backend.js";
import { selectBackend } from "./compute/backend.js";
import { JobData } from "./job-data.js";
import type { ColocatedShard } from "./trainer.js";
import { Trainer } from "./trainer.js";
import { reportFailure, WorkerFailure, workerFailure } from "./worker-failure.js";

export interface WorkerOptions {
  coordinator: string;
  host: string;
  backend: BackendChoice;
  /** Folders searched for the built-in dataset, in order. */
  dataDirs: string[];
  /** How users' files are read (retries, S3 settings); default: the environment's. */
  sources?: SourceOptions | undefined;
  logger: Logger;
  signal: AbortSignal;
  /** Colocated placement: the shard in this process, reached through memory. */
  colocatedShard?: ColocatedShard | undefined;
  /** The worker's credentials: mutual TLS with the coordinator and the shards. Plaintext when absent. */
  security?: TransportSecurity | undefined;
}

/** How a step fails when a membership change (or a lost shard) overtook it: a closed shard, an aborted pull, an old generation, a dead connection. */
const generationChangeCodes = new Set<number>([
  Code.UNAVAILABLE,
  Code.ABORTED,
  Code.FAILED_PRECONDITION,
  Code.CANCELLED,
  Code.DEADLINE_EXCEEDED,
]);

/** How a session with the coordinator ended: told to stop, evicted (told to register again), or cut off without a word. */
type SessionEnd = "stopped" | "rejoin" | "disconnected";

export async function runWorker(options: WorkerOptions): Promise<void> {
  const { logger } = options;
  // The coordinator and every shard would refuse it later, call by call: say so once, now.
  const wrongIdentity = options.security === undefined ? undefined : peerMismatch(options.security.identity, { roles: ["worker"] });
  if (wrongIdentity !== undefined)
    throw new TrainfleetError(Code.INVALID_ARGUMENT, `a worker cannot run with this certificate: ${wrongIdentity}`);
  let backend: Awaited<ReturnType<typeof selectBackend>>;
  try {
    backend = await selectBackend(options.backend, logger).catch((error: unknown) =>
      Promise.reject(workerFailure("BackendUnavailable", error)),
    );
  } catch (error) {
    // Not registered: the coordinator hears of it by host.
    if (!options.signal.aborted)
      await reportFailure({ coordinator: options.coordinator, security: options.security, host: options.host, error, logger });
    throw error;
  }
  // The job's data, opened when its first assignment names it and kept across sessions.
  const data = new JobData(options);
  try {
    await joinSessions(backend.name, data, options);
  } finally {
    await data.close();
  }
}

async function joinSessions(backend: string, data: JobData, options: WorkerOptions): Promise<void> {
  const { logger } = options;
  for (;;) {
    const session = await joinJob({
      coordinator: options.coordinator,
      register: { role: MemberRole.WORKER, host: options.host, backend },
      logger,
      signal: options.signal,
      security: options.security,
    });
    const end = await followSession(session, data, options);
    // Asked to stop (SIGTERM): the session ended because of that, not because of the coordinator.
    if (end === "stopped" || options.signal.aborted) return;
    if (end === "rejoin")
      logger.warn({ memberId: session.memberId }, "the coordinator marked this worker lost while it was alive; registering again");
    // It may have lost us too, or not yet (then this member's lease runs out, as it sends no more heartbeats).
    else
      logger.warn(
        { memberId: session.memberId },
        "the connection to the coordinator broke before it told this worker to stop; registering again",
      );
    // A pause, so that a worker the coordinator keeps refusing does not spin.
    try {
      await abortableDelay(Math.min(1_000, session.leaseMs), options.signal);
    } catch {
      return;
    }
  }
}

/** Follows one session's assignments until Stop, eviction, or the end of the assignment stream. */
async function followSession(session: MemberSession, jobData: JobData, options: WorkerOptions): Promise<SessionEnd> {
  const log = options.logger.child({ workerId: session.memberId, jobId: session.jobId });
  // Every line of this process from now on is this member's; a rank, generation and step come with the assignments.
  logContext.set({ jobId: session.jobId, workerId: session.memberId });
  logContext.clear("rank", "generation", "step");
  const stop = new AbortController();
  const onAbort = () => stop.abort(options.signal.reason);
  options.signal.addEventListener("abort", onAbort, { once: true });
  let end: SessionEnd | undefined;
  const onEvicted = () => {
    end = "rejoin";
    stop.abort(session.evicted.reason);
  };
  session.evicted.addEventListener("abort", onEvicted, { once: true });
  const todo = new AsyncQueue<AssignmentsResponse>();
  /** The newest generation assigned, and what abandons its steps when a newer one comes. */
  let latest = { generation: 0, abandon: new AbortController() };
  const reader = (async () => {
    try {
      for await (const assignment of session.assignments()) {
        const { kind } = assignment;
        if (kind.case === "stop") {
          log.info({ reason: kind.value.reason, rejoin: kind.value.rejoin }, "told to stop");
          end = kind.value.rejoin ? "rejoin" : "stopped";
          break;
        }
        // Steps come two ahead of the one being computed: their records are read meanwhile.
        if (kind.case === "step") jobData.current?.train.prefetch(kind.value.sampleIndices);
        if (kind.case === "worker" && kind.value.generation > latest.generation) {
          latest.abandon.abort(new TrainfleetError(Code.ABORTED, `generation ${kind.value.generation} began`));
          latest = { generation: kind.value.generation, abandon: new AbortController() };
        }
        todo.push(assignment);
      }
    } catch (error) {
      if (!stop.signal.aborted) log.error({ err: TrainfleetError.from(error).message }, "lost the coordinator's assignment stream");
    } finally {
      todo.close();
      stop.abort(new TrainfleetError(Code.CANCELLED, "assignments ended"));
    }
  })();
  const context = {
    memberId: session.memberId,
    coordinator: session.coordinator,
    logger: log,
    colocatedShard: options.colocatedShard,
    security: options.security,
  };
  let trainer: Trainer | undefined;
  try {
    for await (const assignment of todo.read(stop.signal)) {
      const { kind } = assignment;
      if (kind.case === "worker") {
        if (kind.value.generation < latest.generation) continue;
        logContext.set({ rank: kind.value.rank, generation: kind.value.generation });
        log.info({ rank: kind.value.rank, worldSize: kind.value.worldSize, generation: kind.value.generation }, "assigned a rank");
        if (trainer?.canTake(kind.value) === true) trainer.reassign(kind.value);
        else {
          trainer?.close();
          trainer = undefined;
          const data = await jobData.open(kind.value.spec!);
          trainer = await Trainer.create(kind.value, { ...context, data }).catch((error: unknown) =>
            Promise.reject(workerFailure("ModelError", error)),
          );
        }
        continue;
      }
      if (kind.case !== "step" && kind.case !== "evaluate") continue;
      // Steps of an older generation are abandoned: the coordinator hands them out again.
      if (kind.value.generation < latest.generation) continue;
      if (trainer === undefined) throw new TrainfleetError(Code.FAILED_PRECONDITION, `got a ${kind.case} before a rank assignment`);
      const current = latest;
      const signal = AbortSignal.any([stop.signal, current.abandon.signal]);
      logContext.set({ step: kind.case === "step" ? kind.value.step : kind.value.version });
      try {
        if (kind.case === "step") await trainer.step(kind.value, signal);
        else await trainer.evaluate(kind.value, signal);
      } catch (error) {
        if (stop.signal.aborted || current.abandon.signal.aborted) continue;
        // A bad gradient, corrupt data, a bug: no new assignment mends those (whatever their code).
        if (error instanceof WorkerFailure || !generationChangeCodes.has(TrainfleetError.from(error).code)) throw error;
        const pauseMs = (trainer.pauseTimeoutSeconds + 1) * 1000;
        await awaitNextGeneration(current, TrainfleetError.from(error), Math.max(3 * session.leaseMs, pauseMs), stop.signal, log);
      }
    }
  } catch (error) {
    if (!stop.signal.aborted) {
      // Fatal: the coordinator hears why while this member's session is still open.
      await reportFailure({
        client: session.coordinator,
        coordinator: options.coordinator,
        security: options.security,
        workerId: session.memberId,
        host: options.host,
        generation: latest.generation,
        error,
        logger: log,
      });
      throw error;
    }
  } finally {
    stop.abort();
    await reader;
    trainer?.close();
    session.close();
    options.signal.removeEventListener("abort", onAbort);
    session.evicted.removeEventListener("abort", onEvicted);
  }
  return end ?? "disconnected";
}

/**
 * A step failed without being abandoned. When a membership change closed a shard before
 * the coordinator's new assignment reached this worker, that assignment is on its way;
 * when a shard died, it comes once a new shard is in (the job is paused meanwhile). Wait
 * for it (or a Stop) as long as the job may stay paused; otherwise the failure is ours.
 */
async function awaitNextGeneration(
  current: { generation: number; abandon: AbortController },
  failure: TrainfleetError,
  waitMs: number,
  stop: AbortSignal,
  log: Logger,
): Promise<void> {
  log.warn(
    { generation: current.generation, err: failure.message, waitMs },
    "a step failed; waiting for the coordinator's next assignment",
  );
  try {
    await abortableDelay(waitMs, AbortSignal.any([stop, current.abandon.signal]));
  } catch {
    return; // a newer generation or a Stop came
  }
  throw new TrainfleetError(
    failure.code,
    `a step of generation ${current.generation} failed and no new assignment came within ${waitMs} ms: ${failure.message}`,
    { cause: failure },
  );
}
