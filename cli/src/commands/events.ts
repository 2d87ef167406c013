/** `trainfleet events`: tails a coordinator's job events and step metrics on NATS. */

import { JobEventKind, JobPhase } from "@trainfleet/proto";
import type { Command } from "../command.js";
import { requireString } from "../command.js";
import { commonFlags } from "../common-flags.js";
import { busMessageJson, busMessageLine } from "../event-lines.js";

export const eventsCommand: Command = {
  name: "events",
  usage: "trainfleet events --nats-url URL [--job ID] [--from-start] [--json]",
  summary:
    "Tails the job events (trainfleet.jobs.JOB.events: submitted, member joined, started, generation changed, phase changed, checkpoint written, evaluation done, member lost, member failed, finished) and per-step metrics (trainfleet.jobs.JOB.metrics) that coordinators started with --nats-url publish, one line each. Live only, or with --from-start the JetStream stream TRAINFLEET_JOBS's history first, then live. Runs until Ctrl-C; with --job it exits when that job's finished event arrives (0 if the job succeeded, 1 if it failed). Events are hints: the status API is the truth.",
  flags: {
    "nats-url": {
      kind: "string",
      env: "TRAINFLEET_NATS_URL",
      help: "NATS server(s) to read from (nats://HOST:PORT, comma-separated; required).",
    },
    job: {
      kind: "string",
      help: "Only this job's subjects (trainfleet.jobs.JOB.*); exit at its finished event. Without it: every job, until Ctrl-C.",
    },
    "from-start": {
      kind: "boolean",
      help: "Replay the stream's history first (a JetStream ordered consumer on TRAINFLEET_JOBS), then follow.",
    },
    json: {
      kind: "boolean",
      help: 'One JSON line per message: {"subject": ..., "event": JobEvent} or {"subject": ..., "metrics": StepMetrics} (proto JSON).',
    },
    "log-level": commonFlags["log-level"]!,
  },
  async run({ values, signal }) {
    const url = requireString(values, "nats-url");
    const jobId = values.job as string | undefined;
    const json = values.json === true;
    const out = process.stdout;
    const { followJobEvents } = await import("@trainfleet/coordinator");
    for await (const message of followJobEvents({ url, jobId, fromStart: values["from-start"] === true, signal })) {
      out.write(`${json ? busMessageJson(message) : busMessageLine(message)}\n`);
      if (jobId !== undefined && message.kind === "event" && message.event.kind === JobEventKind.FINISHED) {
        return message.event.phase === JobPhase.SUCCEEDED ? 0 : 1;
      }
    }
    return 0;
  },
};
