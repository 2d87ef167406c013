#!/usr/bin/env node
/**
 * The `trainfleet` binary: one subcommand per role, plus `run` for a whole local fleet.
 * Config is parsed and validated here, once; the logger is created here, once.
 */
import { codeName, TrainfleetError } from "@trainfleet/proto";
import { redactUrl } from "@trainfleet/runtime";
import type { Command } from "./command.js";
import { namePositionals } from "./command.js";
import { coordinatorCommand } from "./commands/coordinator.js";
import { datasetCommand } from "./commands/dataset.js";
import { eventsCommand } from "./commands/events.js";
import { getCommand } from "./commands/get.js";
import { modelCommand } from "./commands/model.js";
import { operatorCommand } from "./commands/operator.js";
import { psCommand } from "./commands/ps.js";
import { runCommand } from "./commands/run.js";
import { scaleCommand } from "./commands/scale.js";
import { statusCommand } from "./commands/status.js";
import { submitCommand } from "./commands/submit.js";
import { workerCommand } from "./commands/worker.js";
import { helpText, parseFlags } from "./flags.js";
import { createLogger } from "./logger.js";

const commands: Command[] = [
  runCommand,
  statusCommand,
  eventsCommand,
  coordinatorCommand,
  psCommand,
  workerCommand,
  operatorCommand,
  submitCommand,
  getCommand,
  scaleCommand,
  datasetCommand,
  modelCommand,
];

const usage = `Usage: trainfleet <command> [flags]

Commands:
${commands.map((c) => `  ${c.name.padEnd(12)} ${c.summary.split(". ")[0]}.`).join("\n")}

Run \`trainfleet <command> --help\` for its flags.
`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "help") {
    process.stdout.write(usage);
    return name === undefined ? 2 : 0;
  }
  const command = commands.find((c) => c.name === name);
  if (command === undefined) {
    process.stderr.write(`trainfleet: unknown command "${name}"\n\n${usage}`);
    return 2;
  }
  if (rest.includes("--help")) {
    process.stdout.write(helpText(`Usage: ${command.usage}`, command.summary, command.flags));
    return 0;
  }
  const args = namePositionals(command, rest);
  const values = parseFlags(command.flags, args, process.env);
  const logger = createLogger(values["log-level"] as string, { role: command.name });
  const controller = new AbortController();
  let firstSignalAt: number | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    // A second signal means "now": do not wait for a graceful stop.
    // (`npm start` forwards the terminal's Ctrl-C, so one press can arrive twice at once: that is still the first.)
    if (firstSignalAt !== undefined) {
      if (Date.now() - firstSignalAt > 500) process.exit(130);
      return;
    }
    firstSignalAt = Date.now();
    logger.info({ signal }, "stopping");
    controller.abort(new TrainfleetError(1, `received ${signal}`));
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  // Whether the command's work was done before any signal: then its exit code stands.
  let doneBeforeSignal = false;
  const workDone = () => void (doneBeforeSignal ||= !controller.signal.aborted);
  const code = await command.run({ values, logger, signal: controller.signal, env: process.env, workDone });
  // Stopped by a signal before its work was done: 143, as a process killed by SIGTERM.
  if (controller.signal.aborted && !doneBeforeSignal) return 143;
  return code;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const failure = TrainfleetError.from(error);
    // A URL in a message shows no credentials (a NATS URL, an S3 endpoint): this line bypasses the loggers' redaction.
    process.stderr.write(`trainfleet: ${redactUrl(failure.message)}${failure.code === 3 ? "" : ` (${codeName(failure.code)})`}\n`);
    process.exitCode = 1;
  },
);
