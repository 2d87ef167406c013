/**
 * The rules for the CustomResourceDefinition around the TrainingJob schema, checked offline:
 * metadata.name is <plural>.<group>, exactly one storage version, and the scale subresource's
 * paths and the printer columns' jsonPaths name fields the schema has, of the right type.
 * Returns a list of problems, each naming where it is; empty means none. The schema itself is
 * checked by structural-schema.ts.
 */

import type { JsonObject, JsonValue } from "../manifests.js";
import { isJsonObject } from "../manifests.js";
import type { SchemaNode } from "./crd-schema.js";
import { propertyNode, trainingJobSchema } from "./crd-schema.js";

/** CRD-level rules: names, the version, subresource paths and printer columns naming real fields. */
export function crdProblems(crd: JsonObject): string[] {
  const problems: string[] = [];
  const spec = isJsonObject(crd["spec"]) ? crd["spec"] : {};
  const names = isJsonObject(spec["names"]) ? spec["names"] : {};
  const metadata = isJsonObject(crd["metadata"]) ? crd["metadata"] : {};
  if (metadata["name"] !== `${String(names["plural"])}.${String(spec["group"])}`) problems.push("metadata.name must be <plural>.<group>");
  const versions = Array.isArray(spec["versions"]) ? spec["versions"].filter(isJsonObject) : [];
  if (versions.filter((version) => version["storage"] === true).length !== 1)
    problems.push("exactly one version must be the storage version");
  const schema = trainingJobSchema(crd);
  for (const version of versions) {
    const at = `spec.versions[${String(version["name"])}]`;
    const subresources = isJsonObject(version["subresources"]) ? version["subresources"] : {};
    const scale = subresources["scale"];
    if (isJsonObject(scale)) {
      expectPath(schema, scale["specReplicasPath"], ".spec.", "integer", `${at}.subresources.scale.specReplicasPath`, problems);
      expectPath(schema, scale["statusReplicasPath"], ".status.", "integer", `${at}.subresources.scale.statusReplicasPath`, problems);
      if (scale["labelSelectorPath"] !== undefined)
        expectPath(schema, scale["labelSelectorPath"], ".status.", "string", `${at}.subresources.scale.labelSelectorPath`, problems);
    }
    const columns = Array.isArray(version["additionalPrinterColumns"]) ? version["additionalPrinterColumns"].filter(isJsonObject) : [];
    for (const column of columns) {
      const where = `${at}.additionalPrinterColumns[${String(column["name"])}]`;
      const jsonPath = column["jsonPath"];
      if (jsonPath === ".metadata.creationTimestamp") {
        if (column["type"] !== "date") problems.push(`${where}: creationTimestamp is a date`);
        continue;
      }
      const columnType = column["type"];
      if (
        columnType !== "integer" &&
        columnType !== "number" &&
        columnType !== "string" &&
        columnType !== "boolean" &&
        columnType !== "date"
      )
        problems.push(`${where}: unknown type ${String(columnType)}`);
      expectPath(schema, jsonPath, ".", columnType === "date" ? "string" : String(columnType), where, problems);
    }
  }
  return problems;
}

function expectPath(
  schema: SchemaNode,
  path: JsonValue | undefined,
  prefix: string,
  type: string,
  where: string,
  problems: string[],
): void {
  if (typeof path !== "string" || !path.startsWith(prefix))
    return void problems.push(`${where}: ${JSON.stringify(path)} must be a path under ${prefix}`);
  const node = propertyNode(schema, path.slice(1));
  if (node === undefined) problems.push(`${where}: ${path} is not in the schema`);
  else if (node["type"] !== type) problems.push(`${where}: ${path} has type ${String(node["type"])}, expected ${type}`);
}
