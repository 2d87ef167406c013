/**
 * How a job's pods reach the user's model and data: the spec.storage volume, mounted read-only
 * into every pod (the coordinator reads the model and manifests to pin them, the parameter
 * servers a model's initial weights, the workers the model and the data), and the
 * spec.credentialsSecret keys as env vars for s3:// and http(s):// URLs. The Secret is only
 * referenced: its values never pass through the operator, the pod spec or a log.
 */

import type { V1EnvVar, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import type { TrainingJob } from "./training-job.js";

/** spec.storage.mountPath when unset: the CRD's default, for a job the API server did not default. */
export const defaultStorageMountPath = "/data";

/** The pod volume of spec.storage, named so that a worker template's own volumes do not clash with it. */
export const storageVolumeName = "trainfleet-data";

/** The keys of spec.credentialsSecret that become env vars (what the AWS SDK reads), each optional. */
export const credentialKeys = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_REGION",
  "AWS_ENDPOINT_URL_S3",
] as const;

/** The read-only volume and mount of spec.storage, or none. */
export function storageVolume(job: TrainingJob): { volume: V1Volume; mount: V1VolumeMount } | undefined {
  const storage = job.spec.storage;
  if (storage === undefined) return undefined;
  return {
    // Read-only twice: the claim (so no pod can write to it) and the mount.
    volume: { name: storageVolumeName, persistentVolumeClaim: { claimName: storage.persistentVolumeClaim.claimName, readOnly: true } },
    mount: { name: storageVolumeName, mountPath: storage.mountPath ?? defaultStorageMountPath, readOnly: true },
  };
}

/**
 * An env var per credential key, each a reference to spec.credentialsSecret; optional, so a
 * Secret without a session token or an endpoint still starts the pod.
 */
export function credentialEnv(job: TrainingJob): V1EnvVar[] {
  const secret = job.spec.credentialsSecret;
  if (secret === undefined) return [];
  return credentialKeys.map((key) => ({ name: key, valueFrom: { secretKeyRef: { name: secret, key, optional: true } } }));
}
