/**
 * ObjectMeta as the server owns it: on create it assigns uid, creationTimestamp, generation and a
 * name from generateName; on update it keeps those, checks the resourceVersion precondition (the
 * 409 of optimistic concurrency) and bumps generation only when something other than metadata
 * and status changed.
 */
import { randomUUID } from "node:crypto";
import type { JsonObject, JsonValue } from "../../manifests.js";
import { isJsonObject } from "../../manifests.js";
import { badRequest, conflict, invalid } from "./api-status.js";
import { jsonEqual } from "./json-value.js";
import type { ResourceDefinition } from "./resource-table.js";
import { apiVersionOf } from "./resource-table.js";

export function metadataOf(object: JsonObject): JsonObject {
  const metadata = object["metadata"];
  if (isJsonObject(metadata)) return metadata;
  const created: JsonObject = {};
  object["metadata"] = created;
  return created;
}

export function nameOf(object: JsonObject): string {
  const name = metadataOf(object)["name"];
  return typeof name === "string" ? name : "";
}

export function namespaceOf(object: JsonObject): string {
  const namespace = metadataOf(object)["namespace"];
  return typeof namespace === "string" ? namespace : "";
}

export function finalizersOf(object: JsonObject): string[] {
  const finalizers = metadataOf(object)["finalizers"];
  return Array.isArray(finalizers) ? finalizers.filter((entry): entry is string => typeof entry === "string") : [];
}

/** RFC 3339 to the second, as metav1.Time marshals. */
export function timestamp(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, "Z");
}

// The alphabet and length of apiserver's names.SimpleNameGenerator (no vowels, no look-alikes).
const nameAlphabet = "bcdfghjklmnpqrstvwxz2456789";

function generatedSuffix(): string {
  let suffix = "";
  for (let index = 0; index < 5; index++) suffix += nameAlphabet[Math.floor(Math.random() * nameAlphabet.length)];
  return suffix;
}

const dnsSubdomain = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** Checks the body's apiVersion/kind against the resource; fills them in when absent. */
function checkTypeMeta(resource: ResourceDefinition, object: JsonObject): void {
  const apiVersion = apiVersionOf(resource);
  if (object["apiVersion"] !== undefined && object["apiVersion"] !== apiVersion)
    throw badRequest(
      `the API version in the data (${String(object["apiVersion"])}) does not match the expected API version (${apiVersion})`,
    );
  if (object["kind"] !== undefined && object["kind"] !== resource.kind)
    throw badRequest(`the kind in the data (${String(object["kind"])}) does not match the expected kind (${resource.kind})`);
  object["apiVersion"] = apiVersion;
  object["kind"] = resource.kind;
}

function checkNamespace(resource: ResourceDefinition, object: JsonObject, namespace: string): void {
  const metadata = metadataOf(object);
  if (!resource.namespaced) {
    delete metadata["namespace"];
    return;
  }
  if (metadata["namespace"] !== undefined && metadata["namespace"] !== "" && metadata["namespace"] !== namespace) {
    throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
  }
  metadata["namespace"] = namespace;
}

/** The object a create stores (without its resourceVersion, which the store assigns). */
export function prepareForCreate(resource: ResourceDefinition, body: JsonObject, namespace: string, now: Date): JsonObject {
  const object = structuredClone(body);
  checkTypeMeta(resource, object);
  checkNamespace(resource, object, namespace);
  const metadata = metadataOf(object);
  if (
    (metadata["name"] === undefined || metadata["name"] === "") &&
    typeof metadata["generateName"] === "string" &&
    metadata["generateName"] !== ""
  ) {
    metadata["name"] = `${metadata["generateName"]}${generatedSuffix()}`;
  }
  const name = metadata["name"];
  if (typeof name !== "string" || name === "") throw invalid(resource, "", "metadata.name", "name or generateName is required");
  if (name.length > 253 || !dnsSubdomain.test(name))
    throw invalid(
      resource,
      name,
      "metadata.name",
      `"${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`,
    );
  for (const field of ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"])
    delete metadata[field];
  metadata["uid"] = randomUUID();
  metadata["creationTimestamp"] = timestamp(now);
  metadata["generation"] = 1;
  // With a status subresource, status is written only through /status.
  if (resource.status) delete object["status"];
  return object;
}

/** Everything but metadata and status: what a generation counts changes of. */
function specOf(object: JsonObject): JsonObject {
  const { metadata: _metadata, status: _status, ...rest } = object;
  return rest;
}

/**
 * The object an update stores. `part` says what the request may change: "main" everything but
 * status (when the resource has /status) and server-owned metadata, "status" only .status.
 */
export function prepareForUpdate(resource: ResourceDefinition, current: JsonObject, body: JsonObject, part: "main" | "status"): JsonObject {
  const incoming = structuredClone(body);
  checkTypeMeta(resource, incoming);
  checkNamespace(resource, incoming, namespaceOf(current));
  const name = nameOf(current);
  const metadata = metadataOf(incoming);
  if (metadata["name"] !== name)
    throw badRequest(`the name of the object (${String(metadata["name"] ?? "")}) does not match the name on the URL (${name})`);
  const currentMeta = metadataOf(current);
  if (metadata["uid"] !== undefined && metadata["uid"] !== "" && metadata["uid"] !== currentMeta["uid"]) {
    throw conflict(
      resource,
      name,
      `Precondition failed: UID in precondition: ${String(metadata["uid"])}, UID in object meta: ${String(currentMeta["uid"])}`,
    );
  }
  const requested = metadata["resourceVersion"];
  if (requested === undefined || requested === "") {
    if (resource.custom) throw invalid(resource, name, "metadata.resourceVersion", "0x0: must be specified for an update");
  } else if (requested !== currentMeta["resourceVersion"]) throw conflict(resource, name);

  if (part === "status") {
    const updated = structuredClone(current);
    if (incoming["status"] === undefined) delete updated["status"];
    else updated["status"] = incoming["status"];
    return updated;
  }
  if (resource.status) {
    if (current["status"] === undefined) delete incoming["status"];
    else incoming["status"] = structuredClone(current["status"]);
  }
  for (const field of [
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
  ] as const) {
    const kept: JsonValue | undefined = currentMeta[field];
    if (kept === undefined) delete metadata[field];
    else metadata[field] = kept;
  }
  delete metadata["managedFields"];
  if (currentMeta["deletionTimestamp"] !== undefined) {
    const added = finalizersOf(incoming).filter((finalizer) => !finalizersOf(current).includes(finalizer));
    if (added.length > 0)
      throw invalid(
        resource,
        name,
        "metadata.finalizers",
        `${JSON.stringify(added)}: no new finalizers can be added if the object is being deleted`,
      );
  }
  if (!jsonEqual(specOf(current), specOf(incoming)))
    metadata["generation"] = (typeof currentMeta["generation"] === "number" ? currentMeta["generation"] : 0) + 1;
  return incoming;
}
