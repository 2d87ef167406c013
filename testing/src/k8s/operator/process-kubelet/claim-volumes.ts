/**
 * A pod's `persistentVolumeClaim` volumes, for the process kubelet: the test says which claims
 * exist, each a folder of this host (ProcessKubeletOptions.claims), and every mount of a claim
 * is that folder (its subPath below it), shared by every pod that mounts it, as a
 * ReadWriteMany volume is. A local process cannot see the mount path, so the caller rewrites
 * env values under it to the folder (secret-volumes.ts localPath). A pod that mounts a claim
 * the test did not give stays Pending and unscheduled, with the scheduler's words for a claim
 * that does not exist. Not done: readOnly (nothing stops a write), access modes, capacity.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { V1Container, V1Pod } from "@kubernetes/client-node";

/** A pod the scheduler would not place: `message` is what it would say (PodScheduled False, Unschedulable). */
export class Unschedulable extends Error {}

/** Mount path -> the local folder standing for it, for each claim the container mounts. */
export function mountClaimVolumes(pod: V1Pod, container: V1Container, claims: Readonly<Record<string, string>>): Map<string, string> {
  const mounts = new Map<string, string>();
  for (const mount of container.volumeMounts ?? []) {
    const claimName = pod.spec?.volumes?.find((volume) => volume.name === mount.name)?.persistentVolumeClaim?.claimName;
    if (claimName === undefined) continue;
    const root = Object.hasOwn(claims, claimName) ? claims[claimName] : undefined;
    if (root === undefined) throw new Unschedulable(`0/1 nodes are available: persistentvolumeclaim "${claimName}" not found.`);
    // A kubelet makes a missing subPath folder in the volume; the volume itself exists (it was provisioned).
    const folder = mount.subPath === undefined || mount.subPath === "" ? root : join(root, mount.subPath);
    mkdirSync(folder, { recursive: true });
    mounts.set(mount.mountPath, folder);
  }
  return mounts;
}
