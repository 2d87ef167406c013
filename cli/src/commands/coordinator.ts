/** `trainfleet coordinator`: the coordinator of one job. */
import { runCoordinator } from "@trainfleet/coordinator";
import { JobPhase } from "@trainfleet/proto";
import type { Command } from "../command.js";
import { commonFlags } from "../common-flags.js";
import { jobFlags, jobSpecFromFlags } from "../job-flags.js";

export const leaseFlag = {
  "lease-ms": { kind: "integer", default: "10000", env: "TRAINFLEET_LEASE_MS", help: "A member that has not sent a heartbeat for this long is lost." },
} as const;

export const coordinatorCommand: Command = {
  name: "coordinator",
  usage: "trainfleet coordinator [--listen HOST:PORT] [job flags]",
  summary:
    "Runs the coordinator of one job: it waits for the parameter-server shards and workers to register, plans ranks, shard ranges and every step's samples, evaluates the test set at the end, and exits 0 when the job succeeds (1 when it fails). With --no-job it waits for a JobSpec over gRPC (JobService.SubmitJob).",
  flags: {
    listen: { kind: "string", default: "127.0.0.1:7070", env: "TRAINFLEET_LISTEN", help: "host:port of the gRPC server; port 0 picks a free one." },
    "output-dir": { kind: "string", env: "TRAINFLEET_OUTPUT_DIR", help: "Folder to write the trained parameters to (parameters.f32 and parameters.json)." },
    "no-job": { kind: "boolean", help: "Start without a job and wait for JobService.SubmitJob." },
    ...leaseFlag,
    ...jobFlags,
    ...commonFlags,
  },
  async run({ values, logger, signal }) {
    const spec = values["no-job"] === true ? undefined : await jobSpecFromFlags(values);
    const status = await runCoordinator({
      listen: values.listen as string,
      spec,
      leaseMs: values["lease-ms"] as number,
      outputDir: values["output-dir"] as string | undefined,
      logger,
      signal,
      // `trainfleet run` starts us with an IPC channel and waits for the address.
      onListening: (address) => process.send?.({ type: "listening", address }),
    });
    return status.phase === JobPhase.SUCCEEDED ? 0 : 1;
  },
};
