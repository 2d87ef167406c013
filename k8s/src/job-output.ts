/**
 * Where a job's output goes (spec.output): a folder of a PersistentVolumeClaim that only the
 * coordinator's pod mounts, at outputMountPath, with --output-dir (TRAINFLEET_OUTPUT_DIR)
 * pointing at the job's folder on it. The coordinator writes the trained model there when the
 * job succeeds, and its final status (status.json) when it ends the job either way. Once the
 * coordinator has ended the job (its status API or its pod's final word says so), status.output
 * says where and which files: the coordinator reports Succeeded only after the model is written
 * (a failed write fails the job with ExportFailed), so the operator needs nothing more from it.
 */

import { posix } from "node:path";
import type { V1EnvVar, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import type { OutputStatus, TrainingJob } from "./training-job.js";

/** Where the output claim appears in the coordinator's pod. */
export const outputMountPath = "/var/lib/trainfleet/output";

/** The pod volume of the output claim when no volume of the pod already mounts that claim writable. */
export const outputVolumeName = "trainfleet-output";

/**
 * The files the coordinator writes into the job's folder: the trained parameters
 * (coordinator/src/job/save-parameters.ts), the model stock tf.js loads
 * (worker/src/compute/trained-model-writer.ts) and the final status
 * (coordinator/src/job/final-status.ts). test/k8s/operator-training.test.ts finds each one there.
 */
export const trainedModelFiles = ["parameters.f32", "parameters.json", "model.json", "weights.bin"] as const;
export const finalStatusFile = "status.json";

/**
 * The job's folder on the claim: spec.output.path, else NAME-UID. The uid keeps two jobs apart,
 * even one created again under a deleted one's name; it never changes while the job exists, so
 * a restarted coordinator writes where its predecessor did.
 */
export function outputFolder(job: TrainingJob): string | undefined {
  const output = job.spec.output;
  if (output === undefined) return undefined;
  return output.path ?? `${job.metadata.name}-${job.metadata.uid}`;
}

/**
 * The coordinator pod's mount of the output claim, and the volume to add for it: none when
 * one of `volumes` already mounts that claim writable (the checkpoints' claim, say), since a
 * pod declares a claim once and mounts it as often as it needs.
 */
export function outputMount(job: TrainingJob, volumes: readonly V1Volume[]): { volume?: V1Volume; mount: V1VolumeMount } | undefined {
  const claimName = job.spec.output?.persistentVolumeClaim.claimName;
  if (claimName === undefined) return undefined;
  const shared = volumes.find(
    (volume) => volume.persistentVolumeClaim?.claimName === claimName && volume.persistentVolumeClaim.readOnly !== true,
  );
  if (shared !== undefined) return { mount: { name: shared.name, mountPath: outputMountPath } };
  return {
    volume: { name: outputVolumeName, persistentVolumeClaim: { claimName } },
    mount: { name: outputVolumeName, mountPath: outputMountPath },
  };
}

/** The coordinator's --output-dir: the job's folder under the mount; none without spec.output. */
export function outputDirEnv(job: TrainingJob): V1EnvVar[] {
  const folder = outputFolder(job);
  return folder === undefined ? [] : [{ name: "TRAINFLEET_OUTPUT_DIR", value: posix.join(outputMountPath, folder) }];
}

/** status.output once the coordinator ended the job: the model and status.json, or status.json alone when it failed the job. */
export function outputStatus(job: TrainingJob, outcome: "Succeeded" | "Failed", writtenAt: string): OutputStatus | undefined {
  const output = job.spec.output;
  const path = outputFolder(job);
  if (output === undefined || path === undefined) return undefined;
  const files = outcome === "Succeeded" ? [...trainedModelFiles, finalStatusFile] : [finalStatusFile];
  return { claimName: output.persistentVolumeClaim.claimName, path, files, writtenAt };
}
