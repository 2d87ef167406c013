/** Kubernetes objects as plain JSON values, and the few ways the operator reads them. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The value at a dotted path (`spec.workers.replicas`), or undefined where any step is missing. */
export function valueAt(root: JsonValue, path: string): JsonValue | undefined {
  let value: JsonValue | undefined = root;
  for (const key of path.split(".")) {
    if (!isJsonObject(value)) return undefined;
    value = value[key];
  }
  return value;
}
