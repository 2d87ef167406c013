/**
 * The TLS credentials of a `trainfleet run` fleet: a new CA for the job and a certificate
 * for each process it starts (the coordinator, ps-N, worker-N), written into the job
 * folder's tls/ (0700, files 0600), and the flags that hand each process its files. The
 * CA's key is never written: it lives in this process's memory only, so nobody else can
 * issue certificates for the job, and a resumed run makes a new CA and new certificates.
 *
 * The CA lasts as long as a run may (five years); each member's certificate is short-lived
 * (--member-certificate-seconds, 24 hours by default) and renewed here while the run goes on,
 * at 2/3 of its life (runtime's CertificateRenewal: the files are replaced whole, one rename
 * each). The processes reload their files (--tls-reload-seconds: 30 s, or a tenth of a
 * shorter life) and switch to the new certificate without a restart.
 */
import { join } from "node:path";
import type { PeerIdentity } from "@trainfleet/proto";
import { Placement } from "@trainfleet/proto";
import type { IssueOptions, Logger, TlsFiles } from "@trainfleet/runtime";
import {
  CertificateRenewal,
  createJobAuthority,
  defaultCertificateValiditySeconds,
  defaultReloadIntervalMs,
  writeMemberCredentials,
} from "@trainfleet/runtime";
import type { ResolvedJobSpec } from "@trainfleet/spec";

/** How long the in-memory CA of a run is valid: longer than any run goes on. */
const authorityValiditySeconds = 5 * 365 * 24 * 3_600;

export interface LocalFleetCredentials {
  /** --tls-ca, --tls-cert and --tls-key (and --tls-reload-seconds, for short lives) of the process named `name` (coordinator, ps-0, worker-3). */
  flags(name: string): string[];
  /** A colocated worker's shard: --colocated-tls-cert and --colocated-tls-key of ps-{index}. */
  colocatedFlags(index: number): string[];
  /** Stops renewing the certificates. */
  close(): void;
}

export interface LocalFleetCredentialOptions {
  logger: Logger;
  /** Each member certificate's life in seconds (default 24 hours). */
  certificateSeconds?: number | undefined;
  /** Stops the renewals when aborted (as close() does). */
  signal?: AbortSignal | undefined;
}

export async function writeLocalFleetCredentials(
  folder: string,
  spec: ResolvedJobSpec,
  options: LocalFleetCredentialOptions,
): Promise<LocalFleetCredentials> {
  const jobId = spec.jobId;
  const shards = spec.parameterServers!.shards;
  const workers = spec.workers!.replicas;
  const identities: PeerIdentity[] = [
    { jobId, role: "coordinator", name: "coordinator" },
    ...Array.from({ length: shards }, (_, i): PeerIdentity => ({ jobId, role: "parameter-server", name: `ps-${i}` })),
    ...Array.from({ length: workers }, (_, i): PeerIdentity => ({ jobId, role: "worker", name: `worker-${i}` })),
  ];
  const certificateSeconds = options.certificateSeconds ?? defaultCertificateValiditySeconds;
  // Every process listens on 127.0.0.1: its names say so, for tools that check them.
  const issue: IssueOptions = { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validitySeconds: certificateSeconds };
  const authority = await createJobAuthority(jobId, { validitySeconds: authorityValiditySeconds });
  const members = identities.map((identity) => ({ identity, options: issue }));
  const files = await writeMemberCredentials(join(folder, "tls"), authority, members);
  const renewal = new CertificateRenewal(
    authority,
    members.map((member) => {
      const written = files.get(member.identity.name)!;
      return { ...member, files: written, certificatePem: written.issued.certificatePem };
    }),
    { logger: options.logger, signal: options.signal },
  );
  // A process must see a renewed file well within the last third of its certificate's life.
  const reloadSeconds = Math.min(defaultReloadIntervalMs / 1000, certificateSeconds / 10);
  const reload = reloadSeconds < defaultReloadIntervalMs / 1000 ? ["--tls-reload-seconds", String(reloadSeconds)] : [];
  const of = (name: string): TlsFiles => {
    const found = files.get(name);
    if (found === undefined) throw new Error(`no credentials were made for ${name}`);
    return found;
  };
  return {
    flags(name) {
      const { ca, certificate, key } = of(name);
      return ["--tls-ca", ca, "--tls-cert", certificate, "--tls-key", key, ...reload];
    },
    colocatedFlags(index) {
      if (spec.parameterServers!.placement !== Placement.COLOCATED) return [];
      const { certificate, key } = of(`ps-${index}`);
      return ["--colocated-tls-cert", certificate, "--colocated-tls-key", key];
    },
    close: () => renewal.close(),
  };
}
