/**
 * The resources the test server serves, as a table: one entry per group/version/plural with the
 * few facts that change the server's behaviour (scope, subresources, built-in or custom). Add a
 * resource by adding an entry (see `volcanoPodGroups`) or by deriving one from a CRD.
 */

import type { JsonObject, JsonValue } from "../../manifests.js";
import { isJsonObject } from "../../manifests.js";
import { loadCrd } from "../crd-schema.js";

/** A CRD's scale subresource: where Scale's spec.replicas, status.replicas and status.selector live. */
export interface ScalePaths {
  specReplicasPath: string;
  statusReplicasPath: string;
  labelSelectorPath?: string;
}

export interface ResourceDefinition {
  group: string;
  version: string;
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames?: string[];
  /** Whether /status exists; with it the main resource ignores changes to .status. */
  status: boolean;
  scale?: ScalePaths;
  /**
   * A custom resource behaves as the real server's apiextensions handler does: strategic merge
   * patch is refused (415), an update must carry metadata.resourceVersion, list items carry
   * apiVersion and kind. Built-ins allow unconditional updates and take strategic merge patches.
   */
  custom: boolean;
  /** DELETE answers with the object (pods, services, custom resources) or with a Success Status. */
  deleteReturnsObject: boolean;
}

export function apiVersionOf(resource: Pick<ResourceDefinition, "group" | "version">): string {
  return resource.group === "" ? resource.version : `${resource.group}/${resource.version}`;
}

/** The key objects of a resource are stored under; one version per group/plural is served. */
export function resourceKey(resource: Pick<ResourceDefinition, "group" | "plural">): string {
  return `${resource.group}/${resource.plural}`;
}

function core(
  kind: string,
  plural: string,
  options: { status: boolean; deleteReturnsObject: boolean; shortNames?: string[] },
): ResourceDefinition {
  const definition: ResourceDefinition = {
    group: "",
    version: "v1",
    kind,
    listKind: `${kind}List`,
    plural,
    singular: kind.toLowerCase(),
    namespaced: true,
    status: options.status,
    custom: false,
    deleteReturnsObject: options.deleteReturnsObject,
  };
  if (options.shortNames !== undefined) definition.shortNames = options.shortNames;
  return definition;
}

export const corePods = core("Pod", "pods", { status: true, deleteReturnsObject: true, shortNames: ["po"] });
export const coreServices = core("Service", "services", { status: true, deleteReturnsObject: true, shortNames: ["svc"] });
export const coreEvents = core("Event", "events", { status: false, deleteReturnsObject: false, shortNames: ["ev"] });
export const coreConfigMaps = core("ConfigMap", "configmaps", { status: false, deleteReturnsObject: false, shortNames: ["cm"] });
export const coreSecrets = core("Secret", "secrets", { status: false, deleteReturnsObject: false });
/** networking.k8s.io/v1 NetworkPolicy: built in, in a group of its own. */
export const networkPolicies: ResourceDefinition = {
  ...core("NetworkPolicy", "networkpolicies", { status: false, deleteReturnsObject: false, shortNames: ["netpol"] }),
  group: "networking.k8s.io",
};

/** A custom resource as its CRD defines it (the first served version, or `version`). */
export function resourceFromCrd(crd: JsonObject, version?: string): ResourceDefinition {
  const spec = objectField(crd, "spec");
  const names = objectField(spec, "names");
  const versions = spec["versions"];
  if (!Array.isArray(versions)) throw new Error("the CRD has no spec.versions");
  const served = versions
    .filter(isJsonObject)
    .find((entry) => (version === undefined ? entry["served"] === true : entry["name"] === version));
  if (served === undefined) throw new Error(`the CRD serves no version ${version ?? ""}`);
  const subresources = isJsonObject(served["subresources"]) ? served["subresources"] : {};
  const definition: ResourceDefinition = {
    group: stringField(spec, "group"),
    version: stringField(served, "name"),
    kind: stringField(names, "kind"),
    listKind: typeof names["listKind"] === "string" ? names["listKind"] : `${stringField(names, "kind")}List`,
    plural: stringField(names, "plural"),
    singular: typeof names["singular"] === "string" ? names["singular"] : stringField(names, "kind").toLowerCase(),
    namespaced: spec["scope"] === "Namespaced",
    status: isJsonObject(subresources["status"]),
    custom: true,
    deleteReturnsObject: true,
  };
  const shortNames = names["shortNames"];
  if (Array.isArray(shortNames)) definition.shortNames = shortNames.filter((name): name is string => typeof name === "string");
  const scale = subresources["scale"];
  if (isJsonObject(scale)) {
    definition.scale = {
      specReplicasPath: stringField(scale, "specReplicasPath"),
      statusReplicasPath: stringField(scale, "statusReplicasPath"),
    };
    if (typeof scale["labelSelectorPath"] === "string") definition.scale.labelSelectorPath = scale["labelSelectorPath"];
  }
  return definition;
}

/** trainfleet.dev/v1alpha1 trainingjobs, from k8s/crd.yaml (status and scale subresources). */
export const trainingJobs: ResourceDefinition = resourceFromCrd(loadCrd());

/** Volcano's PodGroup (scheduling.volcano.sh/v1beta1), for gang-scheduling tests; not served by default. */
export const volcanoPodGroups: ResourceDefinition = {
  group: "scheduling.volcano.sh",
  version: "v1beta1",
  kind: "PodGroup",
  listKind: "PodGroupList",
  plural: "podgroups",
  singular: "podgroup",
  namespaced: true,
  shortNames: ["pg", "podgroup-v1beta1"],
  status: true,
  custom: true,
  deleteReturnsObject: true,
};

/** What `startKubeApiServer()` serves unless told otherwise. */
export const defaultResources: readonly ResourceDefinition[] = [
  corePods,
  coreServices,
  coreEvents,
  coreConfigMaps,
  coreSecrets,
  networkPolicies,
  trainingJobs,
];

export interface ResourceTable {
  readonly resources: readonly ResourceDefinition[];
  find(group: string, version: string, plural: string): ResourceDefinition | undefined;
  /** The resource objects are stored under `key` (see resourceKey). */
  byKey(key: string): ResourceDefinition | undefined;
}

export function createResourceTable(resources: readonly ResourceDefinition[]): ResourceTable {
  const byPath = new Map<string, ResourceDefinition>();
  const byKey = new Map<string, ResourceDefinition>();
  for (const resource of resources) {
    if (byKey.has(resourceKey(resource))) throw new Error(`${resourceKey(resource)} is served in two versions; the test server serves one`);
    byKey.set(resourceKey(resource), resource);
    const path = `${apiVersionOf(resource)}/${resource.plural}`;
    if (byPath.has(path)) throw new Error(`resource ${path} is listed twice`);
    if (resource.plural === "namespaces") throw new Error("the namespaces resource is not supported (its path is the namespace scope)");
    byPath.set(path, resource);
  }
  return {
    resources,
    find: (group, version, plural) => byPath.get(`${apiVersionOf({ group, version })}/${plural}`),
    byKey: (key) => byKey.get(key),
  };
}

function objectField(object: JsonObject, key: string): JsonObject {
  const value: JsonValue | undefined = object[key];
  if (!isJsonObject(value)) throw new Error(`the CRD has no ${key}`);
  return value;
}

function stringField(object: JsonObject, key: string): string {
  const value: JsonValue | undefined = object[key];
  if (typeof value !== "string") throw new Error(`the CRD has no ${key}`);
  return value;
}
