/** `trainfleet status`: a job's status from the coordinator's HTTP status API. */

import type { JobStatus } from "@trainfleet/proto";
import { Code, JobPhase, TrainfleetError } from "@trainfleet/proto";
import type { Command } from "../command.js";
import { requireString } from "../command.js";
import { commonFlags } from "../common-flags.js";
import { followStatus, getStatus, statusTarget } from "../status-client.js";
import { createStatusView, statusLines } from "../status-view.js";

export const statusCommand: Command = {
  name: "status",
  usage: "trainfleet status URL [--watch] [--json]",
  summary:
    "Shows a job's status from the coordinator's HTTP status API. URL is the job's status URL as `trainfleet run` prints it (http://HOST:PORT/v1/jobs/JOB), or the coordinator's http://HOST:PORT with --job-id. Without --watch it prints the status once and exits 0; with --watch it follows the job's event stream, redrawing a live view until the job ends, and exits 0 if the job succeeded (1 if it failed).",
  positionals: ["url"],
  flags: {
    url: {
      kind: "string",
      env: "TRAINFLEET_STATUS_URL",
      help: "The job's status URL, or the coordinator's http://HOST:PORT (required; may be given as the first argument).",
    },
    "job-id": { kind: "string", default: "fashion-mnist", help: "The job, when URL names only the coordinator." },
    watch: {
      kind: "boolean",
      help: "Follow the job until it ends (server-sent events; reconnects with Last-Event-ID if the connection drops).",
    },
    json: {
      kind: "boolean",
      help: "Print the JobStatus as proto JSON, as GET /v1/jobs/JOB returns it; with --watch one JSON line per change.",
    },
    "log-level": commonFlags["log-level"]!,
  },
  async run({ values, signal }) {
    const target = statusTarget(requireString(values, "url"), values["job-id"] as string);
    const out = process.stdout;
    if (values.watch !== true) {
      const { status, json } = await getStatus(target, signal);
      out.write(values.json === true ? `${JSON.stringify(json, null, 2)}\n` : `${statusLines(status).join("\n")}\n`);
      return 0;
    }
    const view = values.json === true ? undefined : createStatusView(out);
    let last: JobStatus | undefined;
    try {
      for await (const { status, json } of followStatus(target, signal)) {
        last = status;
        if (view === undefined) out.write(`${JSON.stringify(json)}\n`);
        else view.update(status);
      }
    } finally {
      view?.end(last);
    }
    if (last === undefined) throw new TrainfleetError(Code.UNAVAILABLE, "the status stream ended before it sent a status");
    return last.phase === JobPhase.SUCCEEDED ? 0 : 1;
  },
};
