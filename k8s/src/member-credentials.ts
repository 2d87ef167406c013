/**
 * What each pod of a TrainingJob gets to prove who it is, as plain data: the Secret names of the
 * job's CA, of its bearer tokens and of each pod's own TLS credentials, the identity each pod's
 * certificate names (the coordinator `coordinator`, shard N `ps-N`, a worker its pod name, which
 * is also the host it reports), and the volume, mount and env that hand a pod its files. Pure:
 * reconcile asks for the Secrets (ReconcilePlan.credentials), credential-secrets.ts makes them.
 */
import type { V1EnvVar, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import type { PeerIdentity } from "@trainfleet/proto";
import type { Role } from "./names.js";
import type { TrainingJob } from "./training-job.js";

/** Where a pod's TLS files and the coordinator's token files are mounted. */
export const tlsMountPath = "/var/run/trainfleet/tls";
export const tokensMountPath = "/var/run/trainfleet/tokens";

/** The keys of a member's Secret (and so its file names under tlsMountPath). */
export const tlsKeys = {
  ca: "ca.pem",
  certificate: "tls.crt",
  key: "tls.key",
  /** A colocated worker's shard: its own certificate and key (ps-N). */
  colocatedCertificate: "colocated-tls.crt",
  colocatedKey: "colocated-tls.key",
} as const;

/** The keys of the job's CA Secret and of its tokens Secret. */
export const authorityKeys = { certificate: "ca.crt", key: "ca.key" } as const;
export const tokenKeys = { read: "read", control: "control" } as const;

/** Files readable by the pod's group only (the pod's fsGroup is the image's user). */
const secretFileMode = 0o440;

export function authoritySecretName(job: string): string {
  return `${job}-tls-ca`;
}

export function tokensSecretName(job: string): string {
  return `${job}-tokens`;
}

export function memberSecretName(podName: string): string {
  return `${podName}-tls`;
}

/** A Secret the operator must make before the pod that mounts it: the identities its certificates name. */
export interface CredentialRequest {
  secretName: string;
  /** The member's own identity: tls.crt and tls.key. */
  identity: PeerIdentity;
  /** A colocated worker's shard identity: colocated-tls.crt and .key. */
  colocated?: PeerIdentity;
}

/** The identity (and a colocated shard's) that the pod `podName` of `role` proves with its certificate. */
export function credentialRequest(job: TrainingJob, role: Role, podName: string, index: number | undefined): CredentialRequest {
  const jobId = job.metadata.name;
  const secretName = memberSecretName(podName);
  if (role === "coordinator") return { secretName, identity: { jobId, role, name: "coordinator" } };
  if (role === "parameter-server") return { secretName, identity: { jobId, role, name: `ps-${index ?? 0}` } };
  const request: CredentialRequest = { secretName, identity: { jobId, role, name: podName } };
  if (job.spec.parameterServers?.placement === "colocated")
    request.colocated = { jobId, role: "parameter-server", name: `ps-${index ?? 0}` };
  return request;
}

export interface PodCredentials {
  volumes: V1Volume[];
  mounts: V1VolumeMount[];
  env: V1EnvVar[];
}

/** Whether the job runs in plaintext on purpose (spec.security.insecure). */
export function isInsecure(job: TrainingJob): boolean {
  return job.spec.security?.insecure === true;
}

/**
 * The volumes, mounts and env (paths only, never key material) that give a pod its credentials;
 * with spec.security.insecure, TRAINFLEET_INSECURE instead of TLS files (the tokens stay).
 */
export function podCredentials(job: TrainingJob, request: CredentialRequest, role: Role): PodCredentials {
  const file = (key: string) => `${tlsMountPath}/${key}`;
  const result: PodCredentials = isInsecure(job)
    ? { volumes: [], mounts: [], env: [{ name: "TRAINFLEET_INSECURE", value: "true" }] }
    : {
        volumes: [{ name: "trainfleet-tls", secret: { secretName: request.secretName, defaultMode: secretFileMode } }],
        mounts: [{ name: "trainfleet-tls", mountPath: tlsMountPath, readOnly: true }],
        env: [
          { name: "TRAINFLEET_TLS_CA", value: file(tlsKeys.ca) },
          { name: "TRAINFLEET_TLS_CERT", value: file(tlsKeys.certificate) },
          { name: "TRAINFLEET_TLS_KEY", value: file(tlsKeys.key) },
        ],
      };
  if (request.colocated !== undefined && !isInsecure(job))
    result.env.push(
      { name: "TRAINFLEET_COLOCATED_TLS_CERT", value: file(tlsKeys.colocatedCertificate) },
      { name: "TRAINFLEET_COLOCATED_TLS_KEY", value: file(tlsKeys.colocatedKey) },
    );
  if (role === "coordinator") {
    result.volumes.push({
      name: "trainfleet-tokens",
      secret: { secretName: tokensSecretName(job.metadata.name), defaultMode: secretFileMode },
    });
    result.mounts.push({ name: "trainfleet-tokens", mountPath: tokensMountPath, readOnly: true });
    result.env.push(
      { name: "TRAINFLEET_READ_TOKEN_FILE", value: `${tokensMountPath}/${tokenKeys.read}` },
      { name: "TRAINFLEET_CONTROL_TOKEN_FILE", value: `${tokensMountPath}/${tokenKeys.control}` },
    );
  }
  return result;
}
