/**
 * A worker process: choose the compute backend, join the job, and follow the
 * coordinator's assignments until Stop. Assignments are read on their own loop so that a
 * Stop (or the coordinator going away) interrupts a step that is waiting on the network.
 */
import { AsyncQueue, Code, MemberRole, TrainfleetError, joinJob } from "@trainfleet/proto";
import type { AssignmentsResponse, Logger } from "@trainfleet/proto";
import { selectBackend } from "./compute/index.js";
import type { BackendChoice } from "./compute/index.js";
import { loadFashionMnist } from "./dataset/fashion-mnist.js";
import { Trainer } from "./trainer.js";
import type { ColocatedShard, TrainerContext } from "./trainer.js";

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

export async function runWorker(options: WorkerOptions): Promise<void> {
  const { logger } = options;
  const backend = await selectBackend(options.backend, logger);
  // Load the data before joining: a registered worker is one that can train at once.
  const dataset = await loadFashionMnist(options.dataDirs);
  const session = await joinJob({
    coordinator: options.coordinator,
    register: { role: MemberRole.WORKER, host: options.host, backend: backend.name },
    logger,
    signal: options.signal,
  });
  const log = logger.child({ workerId: session.memberId, jobId: session.jobId });
  const stop = new AbortController();
  const onAbort = () => stop.abort(options.signal.reason);
  options.signal.addEventListener("abort", onAbort, { once: true });
  const todo = new AsyncQueue<AssignmentsResponse>();
  let stopped = false;
  const reader = (async () => {
    try {
      for await (const assignment of session.assignments()) {
        if (assignment.kind.case === "stop") {
          log.info({ reason: assignment.kind.value.reason }, "told to stop");
          stopped = true;
          break;
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
  let trainer: Trainer | undefined;
  try {
    for await (const assignment of todo.read(stop.signal)) {
      trainer = await follow(assignment, trainer, { memberId: session.memberId, dataset, coordinator: session.coordinator, logger: log, colocatedShard: options.colocatedShard }, stop.signal);
    }
  } catch (error) {
    if (!stop.signal.aborted) throw error;
  } finally {
    stop.abort();
    await reader;
    trainer?.close();
    session.close();
    options.signal.removeEventListener("abort", onAbort);
  }
  if (!stopped) throw new TrainfleetError(Code.UNAVAILABLE, "the coordinator went away before telling this worker to stop");
}

async function follow(assignment: AssignmentsResponse, trainer: Trainer | undefined, context: TrainerContext, signal: AbortSignal): Promise<Trainer | undefined> {
  switch (assignment.kind.case) {
    case "worker": {
      trainer?.close();
      const { rank, worldSize, generation } = assignment.kind.value;
      context.logger.info({ rank, worldSize, generation }, "assigned a rank");
      return new Trainer(assignment.kind.value, context);
    }
    case "step":
      await requireTrainer(trainer).step(assignment.kind.value, signal);
      return trainer;
    case "evaluate":
      await requireTrainer(trainer).evaluate(assignment.kind.value, signal);
      return trainer;
    default:
      return trainer;
  }
}

function requireTrainer(trainer: Trainer | undefined): Trainer {
  if (trainer === undefined) throw new TrainfleetError(Code.FAILED_PRECONDITION, "got a step before a rank assignment");
  return trainer;
}
