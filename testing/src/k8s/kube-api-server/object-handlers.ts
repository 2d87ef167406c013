/**
 * The verbs on objects (everything but watch): get, list, create, update, patch, delete and
 * deletecollection, on the main resource and on its /status and /scale subresources. Each call
 * returns the reply's code and body, or throws the ApiStatusError the real server would send.
 */

import type { JsonObject } from "../../manifests.js";
import { isJsonObject } from "../../manifests.js";
import type { Admission } from "./admission.js";
import { alreadyExists, badRequest, notFound, unsupportedMediaType } from "./api-status.js";
import { parseJsonObject } from "./json-value.js";
import { metadataOf, prepareForCreate, prepareForUpdate } from "./object-meta.js";
import type { ObjectStore } from "./object-store.js";
import { applyPatch, mediaType } from "./patch.js";
import type { ResourceRoute } from "./request-route.js";
import type { ResourceDefinition } from "./resource-table.js";
import { apiVersionOf, resourceKey } from "./resource-table.js";
import { applyScale, scaleOf, scaleResource } from "./scale-subresource.js";
import { parseFieldSelector, parseLabelSelector } from "./selectors.js";
import type { DeleteOptions, ObjectWriter, PropagationPolicy } from "./writes.js";

export interface ObjectCall {
  route: ResourceRoute;
  query: URLSearchParams;
  contentType: string | undefined;
  body: string;
}

export interface Reply {
  code: number;
  body: JsonObject;
}

export interface ObjectHandlersDependencies {
  store: ObjectStore;
  writer: ObjectWriter;
  now: () => Date;
  /** The checks a create passes before it is stored (a refusal is thrown). */
  admission: Admission;
}

/** A create or update body: JSON only (the real server also takes YAML and protobuf). */
function objectBody(call: ObjectCall): JsonObject {
  const type = mediaType(call.contentType);
  if (type !== "application/json" && type !== "") throw unsupportedMediaType(type, ["application/json"]);
  const body = parseJsonObject(call.body);
  if (!isJsonObject(body)) throw badRequest("the body of the request is not a JSON object");
  return body;
}

/** Built-in lists carry their items without apiVersion and kind; custom resource lists keep them. */
function listItem(resource: ResourceDefinition, object: JsonObject): JsonObject {
  if (resource.custom) return object;
  const { apiVersion: _apiVersion, kind: _kind, ...item } = object;
  return item;
}

export function selectorsOf(resource: ResourceDefinition, query: URLSearchParams): (object: JsonObject) => boolean {
  const labels = parseLabelSelector(query.get("labelSelector"));
  const fields = parseFieldSelector(query.get("fieldSelector"), resourceKey(resource));
  return (object) => labels(object) && fields(object);
}

function propagationPolicy(value: unknown, orphan: unknown): PropagationPolicy | undefined {
  if (value === "Orphan" || value === "Background" || value === "Foreground") return value;
  if (value !== undefined && value !== null) throw badRequest(`propagationPolicy: Unsupported value: ${JSON.stringify(value)}`);
  if (orphan === true || orphan === "true") return "Orphan";
  if (orphan === false || orphan === "false") return "Background";
  return undefined;
}

/** DeleteOptions from the body (client-node sends one) and the query; the body wins. */
function deleteOptions(call: ObjectCall): DeleteOptions {
  const body = call.body.trim() === "" ? {} : parseJsonObject(call.body);
  if (!isJsonObject(body)) throw badRequest("the body of a delete must be DeleteOptions");
  const policy =
    propagationPolicy(body["propagationPolicy"], body["orphanDependents"]) ??
    propagationPolicy(call.query.get("propagationPolicy") ?? undefined, call.query.get("orphanDependents") ?? undefined);
  const options: DeleteOptions = { propagationPolicy: policy ?? "Background" };
  const preconditions = body["preconditions"];
  if (isJsonObject(preconditions)) {
    options.preconditions = {};
    if (typeof preconditions["uid"] === "string") options.preconditions.uid = preconditions["uid"];
    if (typeof preconditions["resourceVersion"] === "string") options.preconditions.resourceVersion = preconditions["resourceVersion"];
  }
  return options;
}

function success(resource: ResourceDefinition, object: JsonObject): JsonObject {
  const metadata = metadataOf(object);
  const details: JsonObject = { name: String(metadata["name"]), kind: resource.plural, uid: String(metadata["uid"]) };
  if (resource.group !== "") details["group"] = resource.group;
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details };
}

export function createObjectHandlers({ store, writer, now, admission }: ObjectHandlersDependencies): (call: ObjectCall) => Reply {
  const current = (route: ResourceRoute): JsonObject => {
    const found = store.get(resourceKey(route.resource), route.namespace, route.name ?? "");
    if (found === undefined) throw notFound(route.resource, route.name ?? "");
    return found;
  };
  const view = (route: ResourceRoute, object: JsonObject): JsonObject =>
    route.subresource === "scale" ? scaleOf(route.resource, object) : object;

  /** Writes `updated` as the main resource, the status, or through the Scale. */
  const write = (route: ResourceRoute, existing: JsonObject, updated: JsonObject): Reply => {
    const { resource } = route;
    let prepared: JsonObject;
    if (route.subresource === "scale") {
      const scaled = applyScale(resource, existing, updated);
      prepared = prepareForUpdate(resource, existing, scaled, "main");
    } else prepared = prepareForUpdate(resource, existing, updated, route.subresource === "status" ? "status" : "main");
    return { code: 200, body: view(route, writer.update(resource, existing, prepared)) };
  };

  return (call) => {
    const { route } = call;
    const { resource } = route;
    switch (route.verb) {
      case "get":
        return { code: 200, body: view(route, current(route)) };
      case "list": {
        const matches = selectorsOf(resource, call.query);
        const items = store.list(resourceKey(resource), route.namespace === "" ? undefined : route.namespace).filter(matches);
        return {
          code: 200,
          body: {
            kind: resource.listKind,
            apiVersion: apiVersionOf(resource),
            metadata: { resourceVersion: String(store.resourceVersion()) },
            items: items.map((item) => listItem(resource, item)),
          },
        };
      }
      case "create": {
        const object = prepareForCreate(resource, objectBody(call), route.namespace, now());
        const name = String(metadataOf(object)["name"]);
        // As on a real server, admission comes before storage: a refused create of an existing name is refused, not 409.
        admission.review({ resource, namespace: route.namespace, name, object });
        if (store.get(resourceKey(resource), route.namespace, name) !== undefined) throw alreadyExists(resource, name);
        return { code: 201, body: writer.create(resource, object) };
      }
      case "update":
        return write(route, current(route), objectBody(call));
      case "patch": {
        const existing = current(route);
        const patched = applyPatch(
          route.subresource === "scale" ? scaleResource : resource,
          view(route, existing),
          call.contentType,
          call.body,
        );
        // A patch is unconditional unless it names a resourceVersion itself.
        const patchedMeta = metadataOf(patched);
        if (patchedMeta["resourceVersion"] === undefined) patchedMeta["resourceVersion"] = metadataOf(existing)["resourceVersion"] ?? "";
        return write(route, existing, patched);
      }
      case "delete": {
        const result = writer.delete(resource, route.namespace, route.name ?? "", deleteOptions(call));
        return { code: 200, body: result.deleted && !resource.deleteReturnsObject ? success(resource, result.object) : result.object };
      }
      case "deletecollection": {
        const options = deleteOptions(call);
        const matches = selectorsOf(resource, call.query);
        const targets = store.list(resourceKey(resource), route.namespace === "" ? undefined : route.namespace).filter(matches);
        const items = targets.map(
          (object) =>
            writer.delete(resource, String(metadataOf(object)["namespace"] ?? ""), String(metadataOf(object)["name"]), options).object,
        );
        return {
          code: 200,
          body: {
            kind: resource.listKind,
            apiVersion: apiVersionOf(resource),
            metadata: { resourceVersion: String(store.resourceVersion()) },
            items: items.map((item) => listItem(resource, item)),
          },
        };
      }
      case "watch":
        throw new Error("watches are served by the watch stream");
    }
  };
}
