/**
 * Kueue's kueue.x-k8s.io/v1beta1 objects the operator reads and writes, for its Kueue tests:
 * Workloads (namespaced, with /status: Kueue writes the admission there) and ResourceFlavors
 * (cluster-scoped, no /status). Both are custom resources on a real cluster (Kueue's CRDs).
 * Not in defaultResources: a test with Kueue "installed" serves them with
 * `resources: [...defaultResources, ...kueueResources]`; without them the Workload API is a 404,
 * as on a cluster without Kueue.
 */
import type { ResourceDefinition } from "./resource-table.js";

export const kueueWorkloads: ResourceDefinition = {
  group: "kueue.x-k8s.io",
  version: "v1beta1",
  kind: "Workload",
  listKind: "WorkloadList",
  plural: "workloads",
  singular: "workload",
  namespaced: true,
  shortNames: ["wl"],
  status: true,
  custom: true,
  deleteReturnsObject: true,
};

export const kueueResourceFlavors: ResourceDefinition = {
  group: "kueue.x-k8s.io",
  version: "v1beta1",
  kind: "ResourceFlavor",
  listKind: "ResourceFlavorList",
  plural: "resourceflavors",
  singular: "resourceflavor",
  namespaced: false,
  shortNames: ["flavor", "flavors", "rf"],
  status: false,
  custom: true,
  deleteReturnsObject: true,
};

export const kueueResources: readonly ResourceDefinition[] = [kueueWorkloads, kueueResourceFlavors];
