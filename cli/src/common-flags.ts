/** Flags every role takes. */
import { hostname } from "node:os";
import type { FlagTable } from "./flags.js";
import { logLevels } from "./logger.js";

export const commonFlags: FlagTable = {
  "log-level": {
    kind: "string",
    choices: logLevels,
    default: "info",
    env: "TRAINFLEET_LOG_LEVEL",
    help: "Least severe log level written.",
  },
  host: { kind: "string", default: hostname(), env: "TRAINFLEET_HOST", help: "Name this process reports to the coordinator." },
};

export const coordinatorAddressFlag: FlagTable = {
  coordinator: { kind: "string", env: "TRAINFLEET_COORDINATOR", help: "host:port of the coordinator's gRPC server (required)." },
};
