/**
 * A pod's `secret` volumes as a kubelet mounts them, for the process kubelet: each Secret the
 * container mounts is read through the API (as a kubelet reads it) and its keys written as files
 * (with the volume's defaultMode, 0644 when unset) into a folder of this host standing for the
 * mount path. A local process cannot see /var/run/..., so the caller rewrites env values under a
 * mount path to the folder (`localPath`). A Secret that does not exist fails the container's start
 * with a message naming it (a real kubelet would leave the pod in ContainerCreating, FailedMount).
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { CoreV1Api, V1Container, V1Pod } from "@kubernetes/client-node";

/** Mount path -> the local folder that holds its files (claim-volumes.ts makes the same map for claims). */
export type SecretMounts = ReadonlyMap<string, string>;

export async function mountSecretVolumes(core: CoreV1Api, pod: V1Pod, container: V1Container, root: string): Promise<SecretMounts> {
  const mounts = new Map<string, string>();
  const namespace = pod.metadata!.namespace!;
  for (const mount of container.volumeMounts ?? []) {
    const volume = pod.spec?.volumes?.find((candidate) => candidate.name === mount.name);
    if (volume?.secret?.secretName === undefined) continue;
    const secretName = volume.secret.secretName;
    let data: Record<string, string>;
    try {
      data = (await core.readNamespacedSecret({ name: secretName, namespace })).data ?? {};
    } catch (error) {
      throw new Error(`volume ${mount.name}: Secret ${namespace}/${secretName} cannot be read (${String(error)})`);
    }
    const dir = join(root, pod.metadata!.uid!, mount.name);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const mode = volume.secret.defaultMode ?? 0o644;
    for (const [key, value] of Object.entries(data)) {
      const path = join(dir, key);
      await writeFile(path, Buffer.from(value, "base64"), { mode });
      await chmod(path, mode);
    }
    mounts.set(mount.mountPath, dir);
  }
  return mounts;
}

/** `value` with a leading mount path replaced by its local folder; other values as they are. */
export function localPath(value: string, mounts: SecretMounts): string {
  for (const [mountPath, dir] of mounts)
    if (value === mountPath || value.startsWith(`${mountPath}/`)) return `${dir}${value.slice(mountPath.length)}`;
  return value;
}
