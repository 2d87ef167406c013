/** The owner reference that ties an object to its TrainingJob: Kubernetes deletes it with the job. */
import type { V1OwnerReference } from "@kubernetes/client-node";
import { apiVersion, kind } from "./names.js";
import type { TrainingJob } from "./training-job.js";

export function ownerReference(job: TrainingJob): V1OwnerReference {
  return { apiVersion, kind, name: job.metadata.name, uid: job.metadata.uid, controller: true, blockOwnerDeletion: true };
}

/** Whether the object is owned by this incarnation of the job (not an older one of the same name). */
export function ownedBy(object: { metadata?: { ownerReferences?: V1OwnerReference[] } }, job: TrainingJob): boolean {
  return object.metadata?.ownerReferences?.some((owner) => owner.uid === job.metadata.uid) ?? false;
}
