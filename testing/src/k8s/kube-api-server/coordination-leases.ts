/**
 * coordination.k8s.io/v1 Leases, for leader-election tests: a built-in, namespaced resource with
 * no subresources (a PUT with a stale metadata.resourceVersion is a 409 Conflict, as on the real
 * server). Not in defaultResources: a test that elects a leader serves it with
 * `resources: [...defaultResources, coordinationLeases]`.
 */
import type { ResourceDefinition } from "./resource-table.js";

export const coordinationLeases: ResourceDefinition = {
  group: "coordination.k8s.io",
  version: "v1",
  kind: "Lease",
  listKind: "LeaseList",
  plural: "leases",
  singular: "lease",
  namespaced: true,
  status: false,
  custom: false,
  deleteReturnsObject: false,
};
