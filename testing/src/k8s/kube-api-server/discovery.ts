/**
 * Discovery documents for the served resources: /api, /api/v1, /apis, /apis/GROUP,
 * /apis/GROUP/VERSION and /version. client-node's KubernetesObjectApi reads the resource lists
 * to map a kind to its plural; kubectl would read them too.
 */
import type { JsonObject } from "../../manifests.js";
import { pathNotFound } from "./api-status.js";
import type { ResourceDefinition, ResourceTable } from "./resource-table.js";
import { apiVersionOf } from "./resource-table.js";

const objectVerbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const subresourceVerbs = ["get", "patch", "update"];

function resourceList(groupVersion: string, resources: readonly ResourceDefinition[]): JsonObject {
  const entries: JsonObject[] = [];
  for (const resource of resources) {
    const entry: JsonObject = {
      name: resource.plural,
      singularName: resource.singular,
      namespaced: resource.namespaced,
      kind: resource.kind,
      verbs: objectVerbs,
    };
    if (resource.shortNames !== undefined) entry["shortNames"] = resource.shortNames;
    entries.push(entry);
    if (resource.status)
      entries.push({
        name: `${resource.plural}/status`,
        singularName: "",
        namespaced: resource.namespaced,
        kind: resource.kind,
        verbs: subresourceVerbs,
      });
    if (resource.scale !== undefined)
      entries.push({
        name: `${resource.plural}/scale`,
        singularName: "",
        namespaced: resource.namespaced,
        group: "autoscaling",
        version: "v1",
        kind: "Scale",
        verbs: subresourceVerbs,
      });
  }
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion, resources: entries };
}

function apiGroup(name: string, versions: string[]): JsonObject {
  const list = versions.map((version) => ({ groupVersion: `${name}/${version}`, version }));
  return { name, versions: list, preferredVersion: list[0]! };
}

/** The discovery document at `segments` (the path split on "/"), or a 404. */
export function discoveryDocument(segments: readonly string[], table: ResourceTable, serverAddress: string): JsonObject {
  const groups = new Map<string, Set<string>>();
  for (const resource of table.resources) {
    if (resource.group === "") continue;
    const versions = groups.get(resource.group) ?? new Set<string>();
    versions.add(resource.version);
    groups.set(resource.group, versions);
  }
  const path = segments.join("/");
  if (path === "version") return { major: "1", minor: "33", gitVersion: "v1.33.0-trainfleet-test-server", platform: "linux/amd64" };
  if (path === "api")
    return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }] };
  if (path === "apis")
    return { kind: "APIGroupList", apiVersion: "v1", groups: [...groups].map(([name, versions]) => apiGroup(name, [...versions])) };
  if (segments[0] === "apis" && segments.length === 2 && groups.has(segments[1]!))
    return { kind: "APIGroup", apiVersion: "v1", ...apiGroup(segments[1]!, [...groups.get(segments[1]!)!]) };
  const groupVersion =
    segments[0] === "api" && segments.length === 2
      ? segments[1]!
      : segments[0] === "apis" && segments.length === 3
        ? `${segments[1]}/${segments[2]}`
        : undefined;
  const served = table.resources.filter((resource) => apiVersionOf(resource) === groupVersion);
  if (groupVersion === undefined || served.length === 0) throw pathNotFound();
  return resourceList(groupVersion, served);
}
