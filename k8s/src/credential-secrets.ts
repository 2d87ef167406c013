/**
 * The Secrets that a reconcile's plan asks for, made and kept fresh with client-node: the job's
 * CA (made once, a year's validity, its certificate and key kept in `<job>-tls-ca`, which only
 * the operator reads), each pod's credentials (`<pod>-tls`: the CA certificate, the pod's
 * certificate and key, issued by that CA for the pod's identity, 24 hours' validity) and the
 * job's bearer tokens (`<job>-tokens`: 32 random bytes each, base64url). All are owned by the
 * TrainingJob, so they go with it. A Secret that is not this job's (an older incarnation's,
 * not yet collected, or anyone else's) is refused, never trusted.
 *
 * Renewal: a live pod's Secret whose certificate is past 2/3 of its life (runtime's
 * renewal-time.ts) gets a new certificate and key of the same CA, written over the Secret's
 * data in place (an update that must match the version read: a concurrent one wins). The
 * kubelet refreshes the pod's mounted files (a whole-Secret volume, no subPath) and the process
 * reloads them. Running jobs are reconciled every statusPollMs, far more often than renewals
 * fall due; so that this reads no Secret on each pass, when each is due is remembered here and
 * it is read again only then, or after 10 minutes (a Secret changed by someone else).
 * A certificate cannot outlive the CA: a job reaching its CA's end is logged (docs/security.md).
 */
import { randomBytes } from "node:crypto";
import type { CoreV1Api, V1Secret } from "@kubernetes/client-node";
import type { JobAuthority, Logger, Validity } from "@trainfleet/runtime";
import { createJobAuthority, issueCertificate, renewalTime, silentLogger, validityOf } from "@trainfleet/runtime";
import { isStatusCode } from "./api-status.js";
import type { CredentialRequest } from "./member-credentials.js";
import { authorityKeys, authoritySecretName, tlsKeys, tokenKeys, tokensSecretName } from "./member-credentials.js";
import { labels, managedBy } from "./names.js";
import { ownedBy, ownerReference } from "./owner.js";
import type { TrainingJob } from "./training-job.js";

const hourMs = 3_600_000;
/** A Secret not yet due is read again after this long anyway: someone may have changed it. */
const recheckMs = 10 * 60_000;

export class CredentialSecrets {
  /** When each pod Secret (namespace/name) is next looked at: its renewal time, or a recheck. */
  readonly #nextCheck = new Map<string, { jobUid: string; at: number }>();

  constructor(
    private readonly core: CoreV1Api,
    private readonly logger: Logger = silentLogger,
  ) {}

  /** Makes the plan's Secrets that do not exist yet; returns the names of those it made. */
  async ensure(job: TrainingJob, secrets: { tokens: boolean; members: readonly CredentialRequest[] }): Promise<string[]> {
    const made: string[] = [];
    if (secrets.tokens) {
      const data = { [tokenKeys.read]: newToken(), [tokenKeys.control]: newToken() };
      if (await this.#createIfMissing(job, tokensSecretName(job.metadata.name), data)) made.push(tokensSecretName(job.metadata.name));
    }
    let authority: JobAuthority | undefined;
    for (const request of secrets.members) {
      if ((await this.#read(job, request.secretName)) !== undefined) continue;
      authority ??= await this.#authority(job);
      if (await this.#createIfMissing(job, request.secretName, await this.#memberData(authority, request))) made.push(request.secretName);
    }
    return made;
  }

  /**
   * Re-issues each live pod's Secret whose certificate is past 2/3 of its life (a missing one is
   * made again); returns the names of those written. Each renewal is logged.
   */
  async renew(job: TrainingJob, members: readonly CredentialRequest[], now = Date.now()): Promise<string[]> {
    const renewed: string[] = [];
    const fields = { job: `${job.metadata.namespace}/${job.metadata.name}`, kind: "Secret" };
    this.#forgetStale(now);
    let authority: JobAuthority | undefined;
    for (const request of members) {
      const key = `${job.metadata.namespace}/${request.secretName}`;
      const next = this.#nextCheck.get(key);
      if (next !== undefined && next.jobUid === job.metadata.uid && next.at > now) continue;
      const secret = await this.#read(job, request.secretName);
      const current = validityIn(secret);
      if (current !== undefined && renewalTime(current) > now) {
        this.#remember(key, job, Math.min(renewalTime(current), now + recheckMs));
        continue;
      }
      authority ??= await this.#authority(job);
      const caEnd = validityOf(authority.certificatePem).notAfter;
      if (current !== undefined && caEnd <= current.notAfter) {
        // Nothing to gain: a certificate cannot outlive the CA. Said once an hour.
        this.#remember(key, job, now + hourMs);
        this.logger.warn(
          { ...fields, name: request.secretName, caValidUntil: new Date(caEnd).toISOString() },
          "the pod's certificate cannot be renewed past the job's CA, which ends then: see docs/security.md (Rotation) to give the job a new CA",
        );
        continue;
      }
      const data = await this.#memberData(authority, request);
      const written =
        secret === undefined ? await this.#createIfMissing(job, request.secretName, data) : await this.#replaceData(secret, data);
      if (!written) continue;
      renewed.push(request.secretName);
      this.#remember(key, job, renewalTime(validityOf(data[tlsKeys.certificate]!)));
      this.logger.info({ ...fields, name: request.secretName }, "renewed: a new certificate of the job's CA for the pod");
    }
    return renewed;
  }

  /** The job's read token, for the coordinator's status API; undefined until its Secret exists. */
  async readToken(job: TrainingJob): Promise<string | undefined> {
    const secret = await this.#read(job, tokensSecretName(job.metadata.name));
    const encoded = secret?.data?.[tokenKeys.read];
    return encoded === undefined ? undefined : Buffer.from(encoded, "base64").toString("utf8");
  }

  /** A pod Secret's data: the CA certificate, the pod's own certificate and key, and a colocated shard's. */
  async #memberData(authority: JobAuthority, request: CredentialRequest): Promise<Record<string, string>> {
    const own = await issueCertificate(authority, request.identity);
    const data: Record<string, string> = {
      [tlsKeys.ca]: authority.certificatePem,
      [tlsKeys.certificate]: own.certificatePem,
      [tlsKeys.key]: own.keyPem,
    };
    if (request.colocated !== undefined) {
      const shard = await issueCertificate(authority, request.colocated);
      data[tlsKeys.colocatedCertificate] = shard.certificatePem;
      data[tlsKeys.colocatedKey] = shard.keyPem;
    }
    return data;
  }

  /** The job's CA from its Secret, or a new one (a race with another pass: the one written wins). */
  async #authority(job: TrainingJob): Promise<JobAuthority> {
    const name = authoritySecretName(job.metadata.name);
    const existing = await this.#read(job, name);
    if (existing === undefined) {
      const made = await createJobAuthority(job.metadata.name);
      const data = { [authorityKeys.certificate]: made.certificatePem, [authorityKeys.key]: made.keyPem };
      if (await this.#createIfMissing(job, name, data)) return made;
    }
    const secret = existing ?? (await this.#read(job, name));
    const text = (key: string) => {
      const value = secret?.data?.[key];
      if (value === undefined)
        throw new Error(`Secret ${job.metadata.namespace}/${name} has no ${key}: delete it, and the operator makes a new CA`);
      return Buffer.from(value, "base64").toString("utf8");
    };
    return { jobId: job.metadata.name, certificatePem: text(authorityKeys.certificate), keyPem: text(authorityKeys.key) };
  }

  /** The Secret if it exists and belongs to this job; a Secret of that name that does not is an error. */
  async #read(job: TrainingJob, name: string): Promise<V1Secret | undefined> {
    let secret: V1Secret;
    try {
      secret = await this.core.readNamespacedSecret({ name, namespace: job.metadata.namespace });
    } catch (error) {
      if (isStatusCode(error, 404)) return undefined;
      throw error;
    }
    if (!ownedBy(secret, job))
      throw new Error(
        `Secret ${job.metadata.namespace}/${name} exists but is not TrainingJob ${job.metadata.name}'s (uid ${job.metadata.uid}): the operator will not use credentials it did not make; delete the Secret`,
      );
    return secret;
  }

  /** Creates the Secret; false when one of that name was there first. */
  async #createIfMissing(job: TrainingJob, name: string, data: Record<string, string>): Promise<boolean> {
    const body: V1Secret = {
      apiVersion: "v1",
      kind: "Secret",
      type: "Opaque",
      metadata: {
        name,
        namespace: job.metadata.namespace,
        labels: { [labels.managedBy]: managedBy, [labels.jobName]: job.metadata.name },
        ownerReferences: [ownerReference(job)],
      },
      data: encode(data),
    };
    try {
      await this.core.createNamespacedSecret({ namespace: job.metadata.namespace, body });
      return true;
    } catch (error) {
      if (isStatusCode(error, 409)) return false;
      throw error;
    }
  }

  /** Replaces the Secret's data, if it is still the version read; false when another write came first. */
  async #replaceData(secret: V1Secret, data: Record<string, string>): Promise<boolean> {
    const { name, namespace } = secret.metadata as { name: string; namespace: string };
    try {
      await this.core.replaceNamespacedSecret({ name, namespace, body: { ...secret, data: encode(data) } });
      return true;
    } catch (error) {
      if (isStatusCode(error, 409)) return false;
      throw error;
    }
  }

  #remember(key: string, job: TrainingJob, at: number): void {
    this.#nextCheck.set(key, { jobUid: job.metadata.uid ?? "", at });
  }

  /** Drops what is remembered of Secrets not looked at for a day (their jobs are gone, or their pods). */
  #forgetStale(now: number): void {
    for (const [key, next] of this.#nextCheck) if (next.at < now - 24 * hourMs) this.#nextCheck.delete(key);
  }
}

/** The validity of a pod Secret's certificate; undefined when it has none that can be read (it is replaced). */
function validityIn(secret: V1Secret | undefined): Validity | undefined {
  const encoded = secret?.data?.[tlsKeys.certificate];
  if (encoded === undefined) return undefined;
  try {
    return validityOf(Buffer.from(encoded, "base64"));
  } catch {
    return undefined;
  }
}

function encode(data: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value, "utf8").toString("base64")]));
}

/** A bearer token: 32 random bytes in base64url, as `trainfleet run` makes them. */
function newToken(): string {
  return randomBytes(32).toString("base64url");
}
