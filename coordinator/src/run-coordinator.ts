/** A coordinator process: serve gRPC, run one job to its end, then let members read Stop. */
import type { JobSpec, JobStatus, Logger } from "@trainfleet/proto";
import { Coordinator } from "./coordinator.js";
import { startCoordinatorServer } from "./coordinator-server.js";
import { saveParameters } from "./save-parameters.js";

export interface CoordinatorProcessOptions {
  listen: string;
  /** A resolved spec, or none to wait for SubmitJob. */
  spec?: JobSpec | undefined;
  leaseMs: number;
  /** Where to write the trained parameters; nothing is written when absent. */
  outputDir?: string | undefined;
  logger: Logger;
  /** Aborting it (SIGTERM) fails the job and stops every member. */
  signal: AbortSignal;
  onListening?: (address: string) => void;
}

export async function runCoordinator(options: CoordinatorProcessOptions): Promise<JobStatus> {
  const { logger, outputDir } = options;
  const coordinator = new Coordinator({
    spec: options.spec,
    leaseMs: options.leaseMs,
    logger,
    ...(outputDir === undefined ? {} : { onTrained: (job) => saveParameters(outputDir, job) }),
  });
  const server = await startCoordinatorServer(coordinator, options.listen);
  logger.info({ address: server.address }, "coordinator listening");
  options.onListening?.(server.address);
  const leaseTimer = setInterval(() => coordinator.checkLeases(), Math.max(25, Math.floor(options.leaseMs / 4)));
  const onAbort = () => coordinator.fail("Terminated", "the coordinator was asked to stop (SIGTERM or SIGINT)");
  options.signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await coordinator.done();
  } finally {
    clearInterval(leaseTimer);
    options.signal.removeEventListener("abort", onAbort);
    // Open assignment and watch streams end once drained, so members read their Stop.
    await server.close(5_000);
  }
}
