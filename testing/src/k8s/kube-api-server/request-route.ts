/**
 * What a request is, from its method and path, in the API server's own terms: discovery, or a
 * verb (get, list, watch, create, update, patch, delete, deletecollection) on a resource,
 * namespace, name and subresource. Unknown paths are 404s and wrong methods 405s, as Status.
 */
import { methodNotAllowed, pathNotFound } from "./api-status.js";
import type { ResourceDefinition, ResourceTable } from "./resource-table.js";

export type Verb = "get" | "list" | "watch" | "create" | "update" | "patch" | "delete" | "deletecollection";

export interface ResourceRoute {
  kind: "resource";
  verb: Verb;
  resource: ResourceDefinition;
  /** "" for cluster-scoped resources and for lists and watches across all namespaces. */
  namespace: string;
  name?: string;
  subresource?: "status" | "scale";
}

export type Route = { kind: "discovery"; segments: string[] } | ResourceRoute;

function isWatch(query: URLSearchParams): boolean {
  const watch = query.get("watch");
  return watch === "true" || watch === "1";
}

function verbOf(method: string, named: boolean, query: URLSearchParams): Verb {
  switch (method) {
    case "GET":
      return named ? "get" : isWatch(query) ? "watch" : "list";
    case "POST":
      if (!named) return "create";
      break;
    case "PUT":
      if (named) return "update";
      break;
    case "PATCH":
      if (named) return "patch";
      break;
    case "DELETE":
      return named ? "delete" : "deletecollection";
  }
  throw methodNotAllowed(method);
}

export function routeOf(method: string, pathname: string, query: URLSearchParams, table: ResourceTable): Route {
  const segments = pathname
    .split("/")
    .filter((segment) => segment !== "")
    .map((segment) => decodeURIComponent(segment));
  let group: string;
  let version: string;
  let rest: string[];
  if (segments[0] === "api" && segments.length >= 2) [group, version, rest] = ["", segments[1]!, segments.slice(2)];
  else if (segments[0] === "apis" && segments.length >= 3) [group, version, rest] = [segments[1]!, segments[2]!, segments.slice(3)];
  else return { kind: "discovery", segments };
  if (rest.length === 0) return { kind: "discovery", segments };

  let namespace = "";
  if (rest[0] === "namespaces" && rest.length >= 3) {
    namespace = rest[1]!;
    rest = rest.slice(2);
  }
  const [plural, name, subresource, ...extra] = rest;
  const resource = plural === undefined ? undefined : table.find(group, version, plural);
  if (resource === undefined || extra.length > 0) throw pathNotFound();
  // A namespaced object lives under its namespace; a cluster-scoped one under none.
  if (resource.namespaced ? namespace === "" && (name !== undefined || method !== "GET") : namespace !== "") throw pathNotFound();
  const verb = verbOf(method, name !== undefined, query);
  const route: ResourceRoute = { kind: "resource", verb, resource, namespace };
  if (name !== undefined) route.name = name;
  if (subresource !== undefined) {
    const served = (subresource === "status" && resource.status) || (subresource === "scale" && resource.scale !== undefined);
    if (!served) throw pathNotFound();
    if (verb !== "get" && verb !== "update" && verb !== "patch") throw methodNotAllowed(method);
    route.subresource = subresource as "status" | "scale";
  }
  return route;
}
