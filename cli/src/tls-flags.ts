/**
 * The TLS flags of every role that joins a job, and what they make: the member's transport
 * security, read and checked at start, then reloaded from the same files every
 * --tls-reload-seconds for as long as the process runs (runtime's CredentialReloader: renewed
 * certificates are used without a restart; a bad set is refused and logged), or plaintext.
 * Paths only (flags or TRAINFLEET_TLS_* variables): key material never goes on a command
 * line. All three files or none; a wrong file fails the start naming its flag and path.
 * Plaintext only with --insecure, and then a warning on every start: a member started with
 * no flag at all is refused, so nobody runs in the clear by forgetting them.
 */
import type { ExpectedPeer, PeerIdentity, TransportSecurity } from "@trainfleet/proto";
import { Code, identityUri, peerMismatch, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { defaultReloadIntervalMs, reloadingTransportSecurity } from "@trainfleet/runtime";
import type { FlagTable, FlagValue } from "./flags.js";
import { UsageError } from "./flags.js";

export const tlsFlags = {
  "tls-ca": {
    kind: "string",
    env: "TRAINFLEET_TLS_CA",
    help: "PEM file of the job's CA certificate, the only issuer trusted. With --tls-cert and --tls-key every connection is mutual TLS.",
  },
  "tls-cert": {
    kind: "string",
    env: "TRAINFLEET_TLS_CERT",
    help: "PEM file of this member's certificate, issued by the job's CA for its role and name.",
  },
  "tls-key": {
    kind: "string",
    env: "TRAINFLEET_TLS_KEY",
    help: "PEM file of this member's private key (keep it 0600): a path, never the key itself.",
  },
  "tls-reload-seconds": {
    kind: "number",
    default: String(defaultReloadIntervalMs / 1000),
    env: "TRAINFLEET_TLS_RELOAD_SECONDS",
    help: "How often the --tls-* files are read again: renewed credentials (a new certificate of the same identity and CA) are switched to without a restart.",
  },
  insecure: {
    kind: "boolean",
    env: "TRAINFLEET_INSECURE",
    help: "Plaintext: no connection encrypted or authenticated, on purpose. A warning is logged on every start.",
  },
} as const satisfies FlagTable;

/** The flag names readTransportSecurity's errors name. */
const flagNames = { ca: "--tls-ca", certificate: "--tls-cert", key: "--tls-key" };

const tlsFlagList = ["tls-ca", "tls-cert", "tls-key"] as const;

/**
 * The member's transport security from its flags, or undefined for plaintext (logged as a
 * warning). `expected` is whom the certificate must name (a ps the shard it serves).
 */
export async function transportSecurity(
  values: Record<string, FlagValue>,
  logger: Logger,
  expected: ExpectedPeer,
): Promise<TransportSecurity | undefined> {
  const given = tlsFlagList.filter((name) => typeof values[name] === "string" && values[name] !== "");
  const insecure = values.insecure === true;
  if (insecure && given.length > 0)
    throw new UsageError(
      `--insecure contradicts ${given.map((name) => `--${name}`).join(", ")}: give --tls-ca, --tls-cert and --tls-key, or --insecure`,
    );
  if (given.length === 0) {
    if (!insecure)
      throw new UsageError(
        "no TLS credentials: give --tls-ca, --tls-cert and --tls-key (the job's CA, this member's certificate and key; `trainfleet run` and the operator make them), or --insecure for plaintext on purpose",
      );
    logger.warn(
      { insecure },
      "--insecure: plaintext, connections are neither encrypted nor authenticated; give --tls-ca, --tls-cert and --tls-key (the job's CA, this member's certificate and key) for mutual TLS",
    );
    return undefined;
  }
  if (given.length < tlsFlagList.length) {
    const missing = tlsFlagList.filter((name) => !given.includes(name)).map((name) => `--${name}`);
    throw new UsageError(
      `${given.map((name) => `--${name}`).join(" and ")} given without ${missing.join(" and ")}: give all three (the job's CA, this member's certificate and its key), or none`,
    );
  }
  const files = { ca: values["tls-ca"] as string, certificate: values["tls-cert"] as string, key: values["tls-key"] as string };
  const security = await reloadingTransportSecurity(files, flagNames, { logger, intervalMs: reloadIntervalMs(values) });
  checkIdentity(security.identity, expected, `--tls-cert ${files.certificate}`);
  logger.info({ identity: identityUri(security.identity) }, "mutual TLS with the job's CA");
  return security;
}

/** The flags of a colocated shard's own certificate: the worker's names a worker, the shard needs its own. */
export const colocatedTlsFlags = {
  "colocated-tls-cert": {
    kind: "string",
    env: "TRAINFLEET_COLOCATED_TLS_CERT",
    help: "With --colocated-shard-index over mutual TLS: PEM file of the shard's certificate (parameter-server ps-N of the job, same CA as --tls-ca).",
  },
  "colocated-tls-key": {
    kind: "string",
    env: "TRAINFLEET_COLOCATED_TLS_KEY",
    help: "With --colocated-shard-index over mutual TLS: PEM file of the shard's private key.",
  },
} as const satisfies FlagTable;

/**
 * The colocated shard's transport security: its own certificate with the worker's CA, or
 * undefined in plaintext. Over TLS it must name parameter-server ps-{index} of the worker's job.
 */
export async function colocatedShardSecurity(
  values: Record<string, FlagValue>,
  worker: TransportSecurity | undefined,
  shard: { index: number; expected: ExpectedPeer } | undefined,
  logger: Logger,
): Promise<TransportSecurity | undefined> {
  const given = (["colocated-tls-cert", "colocated-tls-key"] as const).filter(
    (name) => typeof values[name] === "string" && values[name] !== "",
  );
  if (worker === undefined || shard === undefined) {
    if (given.length > 0)
      throw new UsageError(
        `--${given[0]} is for a colocated shard over mutual TLS: give it with --colocated-shard-index, --tls-ca, --tls-cert and --tls-key`,
      );
    return undefined;
  }
  if (given.length < 2)
    throw new UsageError(
      `--colocated-shard-index over mutual TLS needs the shard's own certificate (parameter-server ps-${shard.index}): give --colocated-tls-cert and --colocated-tls-key`,
    );
  const files = {
    ca: values["tls-ca"] as string,
    certificate: values["colocated-tls-cert"] as string,
    key: values["colocated-tls-key"] as string,
  };
  const security = await reloadingTransportSecurity(
    files,
    { ca: "--tls-ca", certificate: "--colocated-tls-cert", key: "--colocated-tls-key" },
    { logger, intervalMs: reloadIntervalMs(values) },
  );
  checkIdentity(security.identity, { jobId: worker.identity.jobId, ...shard.expected }, `--colocated-tls-cert ${files.certificate}`);
  return security;
}

function checkIdentity(identity: PeerIdentity, expected: ExpectedPeer, source: string): void {
  const problem = peerMismatch(identity, expected);
  if (problem !== undefined)
    throw new TrainfleetError(
      Code.INVALID_ARGUMENT,
      `${source}: this process cannot use it: ${problem}; give the certificate issued for it`,
    );
}

/** --tls-reload-seconds in milliseconds; the poll lasts as long as the process (its timer keeps nothing alive). */
function reloadIntervalMs(values: Record<string, FlagValue>): number {
  const seconds = values["tls-reload-seconds"] as number;
  if (!(seconds > 0)) throw new UsageError(`--tls-reload-seconds: expected a number of seconds above 0, got ${seconds}`);
  return seconds * 1000;
}
