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
 * time. A worker the coordinator marked lost while it lived (a partition) registers again.
 */
import { AsyncQueue, Code, MemberRole, TrainfleetError, abortableDelay, joinJob } from "@trainfleet/proto";
import type { AssignmentsResponse, Logger, MemberSession } from "@trainfleet/proto";
import { selectBackend } from "./compute/index.js";
import type { BackendChoice } from "./compute/index.js";
import { loadFashionMnist } from "./dataset/fashion-mnist.js";
import type { ImageDataset } from "./dataset/fashion-mnist.js";
import { Trainer } from "./trainer.js";
import type { ColocatedShard } from "./trainer.js";

export interface WorkerOptions {
  coordinator: string;
  host: string;
  backend: BackendChoice;
  /** Folders searched for the dataset, in order. */
  dataDirs: string[];
  logger: Logger;
  signal: AbortSignal;
  /** Colocated placement: the shard in this process, reached through memory. */
  colocatedShard?: ColocatedShard | undefined;
}

/** How a session with the coordinator ended. */
type SessionEnd = "stopped" | "rejoin";

export async function runWorker(options: WorkerOptions): Promise<void> {
  const { logger } = options;
  const backend = await selectBackend(options.backend, logger);
  // Load the data before joining: a registered worker is one that can train at once.
  const dataset = await loadFashionMnist(options.dataDirs);
  for (;;) {
    const session = await joinJob({
      coordinator: options.coordinator,
      register: { role: MemberRole.WORKER, host: options.host, backend: backend.name },
      logger,
      signal: options.signal,
    });
    if ((await followSession(session, dataset, options)) === "stopped") return;
    logger.warn({ memberId: session.memberId }, "the coordinator marked this worker lost while it was alive; registering again");
    // A pause, so that a worker the coordinator keeps refusing does not spin.
    try {
      await abortableDelay(Math.min(1_000, session.leaseMs), options.signal);
    } catch {
      return;
    }
  }
}

/** Follows one session's assignments until Stop or eviction; throws if the coordinator goes away. */
async function followSession(session: MemberSession, dataset: ImageDataset, options: WorkerOptions): Promise<SessionEnd> {
  const log = options.logger.child({ workerId: session.memberId, jobId: session.jobId });
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
  const context = { memberId: session.memberId, dataset, coordinator: session.coordinator, logger: log, colocatedShard: options.colocatedShard };
  let trainer: Trainer | undefined;
  try {
    for await (const assignment of todo.read(stop.signal)) {
      const { kind } = assignment;
      if (kind.case === "worker") {
        if (kind.value.generation < latest.generation) continue;
        log.info({ rank: kind.value.rank, worldSize: kind.value.worldSize, generation: kind.value.generation }, "assigned a rank");
        if (trainer?.servesJob(kind.value.spec!.jobId) === true) trainer.reassign(kind.value);
        else {
          trainer?.close();
          trainer = new Trainer(kind.value, context);
        }
        continue;
      }
      if (kind.case !== "step" && kind.case !== "evaluate") continue;
      // Steps of an older generation are abandoned: the coordinator hands them out again.
      if (kind.value.generation < latest.generation) continue;
      if (trainer === undefined) throw new TrainfleetError(Code.FAILED_PRECONDITION, `got a ${kind.case} before a rank assignment`);
      const current = latest;
      const signal = AbortSignal.any([stop.signal, current.abandon.signal]);
      try {
        if (kind.case === "step") await trainer.step(kind.value, signal);
        else await trainer.evaluate(kind.value, signal);
      } catch (error) {
        if (stop.signal.aborted || current.abandon.signal.aborted) continue;
        await awaitNextGeneration(current, TrainfleetError.from(error), session.leaseMs, stop.signal, log);
      }
    }
  } catch (error) {
    if (!stop.signal.aborted) throw error;
  } finally {
    stop.abort();
    await reader;
    trainer?.close();
    session.close();
    options.signal.removeEventListener("abort", onAbort);
    session.evicted.removeEventListener("abort", onEvicted);
  }
  if (end === undefined) throw new TrainfleetError(Code.UNAVAILABLE, "the coordinator went away before telling this worker to stop");
  return end;
}

/**
 * A step failed without being abandoned. When a membership change closed a shard before
 * the coordinator's new assignment reached this worker, that assignment is on its way:
 * wait for it (or a Stop), at most a few leases; otherwise the failure is the worker's.
 */
async function awaitNextGeneration(current: { generation: number; abandon: AbortController }, failure: TrainfleetError, leaseMs: number, stop: AbortSignal, log: Logger): Promise<void> {
  const waitMs = Math.max(30_000, 3 * leaseMs);
  log.warn({ generation: current.generation, err: failure.message, waitMs }, "a step failed; waiting for the coordinator's next assignment");
  try {
    await abortableDelay(waitMs, AbortSignal.any([stop, current.abandon.signal]));
  } catch {
    return; // a newer generation or a Stop came
  }
  throw new TrainfleetError(failure.code, `a step of generation ${current.generation} failed and no new assignment came within ${waitMs} ms: ${failure.message}`, { cause: failure });
}
