/**
 * `trainfleet status`: a job's status from the coordinator's HTTP status API, with the
 * job's read token. Given a `trainfleet run` job folder instead of a URL, it reads the
 * status URL and the read token from the folder.
 */

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { JobStatus } from "@trainfleet/proto";
import { Code, JobPhase, TrainfleetError } from "@trainfleet/proto";
import type { Command } from "../command.js";
import { requireString } from "../command.js";
import { commonFlags } from "../common-flags.js";
import type { FlagValue } from "../flags.js";
import { UsageError } from "../flags.js";
import type { StatusTarget } from "../status-client.js";
import { followStatus, getStatus, statusTarget } from "../status-client.js";
import { createStatusView, statusLines } from "../status-view.js";
import { isFolder, jobTokenPath, readTokenFile } from "../token-files.js";

export const statusCommand: Command = {
  name: "status",
  usage: "trainfleet status URL|JOB_FOLDER [--token-file FILE] [--watch] [--json]",
  summary:
    "Shows a job's status from the coordinator's HTTP status API. URL is the job's status URL as `trainfleet run` prints it (http://HOST:PORT/v1/jobs/JOB), or the coordinator's http://HOST:PORT with --job-id; or give the job folder of a `trainfleet run`, and its status URL and read token are taken from there. A coordinator with tokens needs the job's read (or control) token: --token-file, or TRAINFLEET_TOKEN. Without --watch it prints the status once and exits 0; with --watch it follows the job's event stream, redrawing a live view until the job ends, and exits 0 if the job succeeded (1 if it failed).",
  positionals: ["url"],
  flags: {
    url: {
      kind: "string",
      env: "TRAINFLEET_STATUS_URL",
      help: "The job's status URL, the coordinator's http://HOST:PORT, or a `trainfleet run` job folder (required; may be given as the first argument).",
    },
    "token-file": {
      kind: "string",
      env: "TRAINFLEET_TOKEN_FILE",
      help: "A file holding the job's read (or control) token, sent as Authorization: Bearer. Without it: the token in TRAINFLEET_TOKEN, else a job folder's tokens/read, else none.",
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
  async run({ values, signal, env }) {
    const target = readTarget(values, env);
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

/** Where to read and with which token: --token-file, else TRAINFLEET_TOKEN, else the job folder's read token. */
function readTarget(values: Record<string, FlagValue>, env: Readonly<Record<string, string | undefined>>): StatusTarget {
  const given = requireString(values, "url");
  const folder = isFolder(given) ? given : undefined;
  let url = given;
  if (folder !== undefined) {
    const file = join(folder, "status-url");
    try {
      url = readFileSync(file, "utf8").trim();
    } catch {
      throw new UsageError(
        `--url: ${folder} is a folder without a status-url file; give a \`trainfleet run\` job folder, or the job's status URL`,
      );
    }
  }
  const target = statusTarget(url, values["job-id"] as string);
  const tokenFile = values["token-file"] as string | undefined;
  const fromEnv = env["TRAINFLEET_TOKEN"];
  if (tokenFile !== undefined) return { ...target, token: { value: readTokenFile(tokenFile, "--token-file"), from: tokenFile } };
  if (fromEnv !== undefined && fromEnv.trim() !== "") {
    if (/\s/.test(fromEnv.trim())) throw new UsageError("TRAINFLEET_TOKEN holds whitespace inside; it should hold the token alone");
    return { ...target, token: { value: fromEnv.trim(), from: "TRAINFLEET_TOKEN" } };
  }
  const path = folder === undefined ? undefined : jobTokenPath(folder, "read");
  // A folder of a run from before tokens has none: its coordinator was open.
  if (path !== undefined && existsSync(path)) {
    return { ...target, token: { value: readTokenFile(path, "the job folder's read token"), from: path } };
  }
  return target;
}
