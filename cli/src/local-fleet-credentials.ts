/**
 * The TLS credentials of a `trainfleet run` fleet: a new CA for the job and a certificate
 * for each process it starts (the coordinator, ps-N, worker-N), written into the job
 * folder's tls/ (0700, files 0600), and the flags that hand each process its files. The
 * CA's key is never written: nobody can issue more certificates for the job, and a resumed
 * run makes a new CA and new certificates (every process starts again anyway).
 */
import { join } from "node:path";
import type { PeerIdentity } from "@trainfleet/proto";
import { Placement } from "@trainfleet/proto";
import type { TlsFiles } from "@trainfleet/runtime";
import { createJobAuthority, writeMemberCredentials } from "@trainfleet/runtime";
import type { ResolvedJobSpec } from "@trainfleet/spec";

export interface LocalFleetCredentials {
  /** --tls-ca, --tls-cert and --tls-key of the process named `name` (coordinator, ps-0, worker-3). */
  flags(name: string): string[];
  /** A colocated worker's shard: --colocated-tls-cert and --colocated-tls-key of ps-{index}. */
  colocatedFlags(index: number): string[];
}

export async function writeLocalFleetCredentials(folder: string, spec: ResolvedJobSpec): Promise<LocalFleetCredentials> {
  const jobId = spec.jobId;
  const shards = spec.parameterServers!.shards;
  const workers = spec.workers!.replicas;
  const identities: PeerIdentity[] = [
    { jobId, role: "coordinator", name: "coordinator" },
    ...Array.from({ length: shards }, (_, i): PeerIdentity => ({ jobId, role: "parameter-server", name: `ps-${i}` })),
    ...Array.from({ length: workers }, (_, i): PeerIdentity => ({ jobId, role: "worker", name: `worker-${i}` })),
  ];
  // Every process listens on 127.0.0.1: its names say so, for tools that check them.
  const options = { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] };
  const files = await writeMemberCredentials(
    join(folder, "tls"),
    await createJobAuthority(jobId),
    identities.map((identity) => ({ identity, options })),
  );
  const of = (name: string): TlsFiles => {
    const found = files.get(name);
    if (found === undefined) throw new Error(`no credentials were made for ${name}`);
    return found;
  };
  return {
    flags(name) {
      const { ca, certificate, key } = of(name);
      return ["--tls-ca", ca, "--tls-cert", certificate, "--tls-key", key];
    },
    colocatedFlags(index) {
      if (spec.parameterServers!.placement !== Placement.COLOCATED) return [];
      const { certificate, key } = of(`ps-${index}`);
      return ["--colocated-tls-cert", certificate, "--colocated-tls-key", key];
    },
  };
}
