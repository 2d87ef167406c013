/**
 * The Secrets that a reconcile's plan asks for, made with client-node: the job's CA (made once,
 * its certificate and key kept in `<job>-tls-ca`, which only the operator reads), each pod's
 * credentials (`<pod>-tls`: the CA certificate, the pod's certificate and key, issued by that CA
 * for the pod's identity) and the job's bearer tokens (`<job>-tokens`: 32 random bytes each,
 * base64url). All are owned by the TrainingJob, so they go with it. A Secret that exists is
 * kept (names are stable; a pod made again gets the same credentials); one that is not this
 * job's (an older incarnation's, not yet collected, or anyone else's) is refused, never trusted.
 */
import { randomBytes } from "node:crypto";
import type { CoreV1Api, V1Secret } from "@kubernetes/client-node";
import type { JobAuthority } from "@trainfleet/runtime";
import { createJobAuthority, issueCertificate } from "@trainfleet/runtime";
import { isStatusCode } from "./api-status.js";
import type { CredentialRequest } from "./member-credentials.js";
import { authorityKeys, authoritySecretName, tlsKeys, tokenKeys, tokensSecretName } from "./member-credentials.js";
import { labels, managedBy } from "./names.js";
import { ownedBy, ownerReference } from "./owner.js";
import type { TrainingJob } from "./training-job.js";

export class CredentialSecrets {
  constructor(private readonly core: CoreV1Api) {}

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
      if (await this.#createIfMissing(job, request.secretName, data)) made.push(request.secretName);
    }
    return made;
  }

  /** The job's read token, for the coordinator's status API; undefined until its Secret exists. */
  async readToken(job: TrainingJob): Promise<string | undefined> {
    const secret = await this.#read(job, tokensSecretName(job.metadata.name));
    const encoded = secret?.data?.[tokenKeys.read];
    return encoded === undefined ? undefined : Buffer.from(encoded, "base64").toString("utf8");
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
      data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value, "utf8").toString("base64")])),
    };
    try {
      await this.core.createNamespacedSecret({ namespace: job.metadata.namespace, body });
      return true;
    } catch (error) {
      if (isStatusCode(error, 409)) return false;
      throw error;
    }
  }
}

/** A bearer token: 32 random bytes in base64url, as `trainfleet run` makes them. */
function newToken(): string {
  return randomBytes(32).toString("base64url");
}
