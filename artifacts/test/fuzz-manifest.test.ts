/**
 * Fuzz of the dataset manifest reader with real manifests (the UCI digits converted by
 * trainfleet's converter, Parquet and Arrow): damaged bytes, and JSON whose fields are
 * replaced by other values or removed. The reader either refuses with INVALID_ARGUMENT
 * naming the manifest, or returns a manifest whose parts agree (the records add up, the
 * blocks lie in order before the footer, the footer ends the file, paths stay inside the
 * manifest's folder); with an expected sha256, any other bytes are DATA_LOSS naming it.
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { convertDigits } from "@trainfleet/testing/fixtures/digits-dataset";
import { fuzzBytes } from "@trainfleet/testing/fuzz/byte-mutations";
import { fuzzAsync, fuzzParameters } from "@trainfleet/testing/fuzz/fuzz-parameters";
import { rejection } from "@trainfleet/testing/rejection";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatasetManifest } from "../src/dataset-manifest.js";
import { columnWidth, parseDatasetManifest, readDatasetManifest } from "../src/dataset-manifest.js";
import { sha256Hex } from "../src/digest.js";

const uri = "/data/digits/dataset.json";
const dirs: string[] = [];
/** The converter's manifests, as bytes. */
const manifests: Uint8Array[] = [];

beforeAll(async () => {
  for (const format of ["parquet", "arrow"] as const) {
    const digits = await convertDigits({ recordsPerFile: 1000, recordsPerBlock: 256, format });
    dirs.push(digits.dir);
    manifests.push(new Uint8Array(await readFile(join(digits.dir, "dataset.json"))));
  }
});
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** Parses `bytes`; the manifest, or undefined after checking that the refusal is INVALID_ARGUMENT naming the manifest. */
function parsedOrRefused(bytes: Uint8Array): DatasetManifest | undefined {
  try {
    return parseDatasetManifest(bytes, uri);
  } catch (error) {
    expect(error).toBeInstanceOf(TrainfleetError);
    expect((error as TrainfleetError).code).toBe(Code.INVALID_ARGUMENT);
    expect((error as TrainfleetError).message.startsWith(`${uri}: `)).toBe(true);
    return undefined;
  }
}

/** What every manifest the reader returns must hold, whatever its bytes were. */
function expectConsistent(manifest: DatasetManifest): void {
  expect(manifest.files.reduce((total, file) => total + file.records, 0)).toBe(manifest.records);
  const columns = new Map(manifest.schema.map((column) => [column.name, column]));
  for (const name of manifest.features.columns) expect(columns.has(name)).toBe(true);
  if (!("decoder" in manifest.features)) {
    const width = manifest.features.columns.reduce((total, name) => total + columnWidth(columns.get(name)!), 0);
    expect(manifest.features.shape.reduce((a, b) => a * b, 1)).toBe(width);
  }
  for (const file of manifest.files) {
    expect(file.path.startsWith("/") || file.path.split(/[\\/]/).includes("..") || /^[a-z][a-z0-9+.-]*:/i.test(file.path)).toBe(false);
    expect(file.blocks.reduce((total, block) => total + block.records, 0)).toBe(file.records);
    expect(file.footer.offset + file.footer.length).toBe(file.bytes);
    let end = 0;
    for (const block of file.blocks) {
      expect(block.offset).toBeGreaterThanOrEqual(end);
      end = block.offset + block.length;
    }
    expect(end).toBeLessThanOrEqual(file.footer.offset);
  }
}

/**
 * A path into `document` walked by `choices`: at each level one of the children (so that
 * the top-level fields are as likely as the sixty-five columns of the schema), stopping
 * where a choice says so or at a leaf.
 */
function pathIn(document: unknown, choices: number[]): (string | number)[] {
  const path: (string | number)[] = [];
  let node = document;
  for (const choice of choices) {
    if (typeof node !== "object" || node === null) break;
    const keys: (string | number)[] = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    if (keys.length === 0 || (path.length > 0 && choice % 4 === 0)) break;
    const key = keys[Math.floor(choice / 4) % keys.length]!;
    path.push(key);
    node = (node as Record<string | number, unknown>)[key];
  }
  return path;
}

/** Values a hostile or broken manifest puts where another belongs. */
const oddValue = fc.oneof(
  fc.integer({ min: -2, max: 4096 }),
  fc.constantFrom(null, true, 0, -1, 1.5, 2 ** 53, 1e308, -0, "", "..", "../x", "/abs", "s3://b/k", "a".repeat(100), [], {}, [1, 2]),
  fc.jsonValue({ maxDepth: 2 }),
);

describe("parseDatasetManifest", () => {
  it("refuses damaged and random bytes of real manifests with INVALID_ARGUMENT naming the manifest, or reads a consistent manifest", () => {
    fc.assert(
      fc.property(fuzzBytes(manifests, 512), (bytes) => {
        const manifest = parsedOrRefused(bytes);
        if (manifest !== undefined) expectConsistent(manifest);
      }),
      fuzzParameters({ numRuns: 2_000, timeLimitMs: 2_000 }),
    );
  });

  it("refuses real manifests with a field replaced or removed, naming the manifest, or reads a consistent manifest", () => {
    const documents = manifests.map((bytes) => JSON.parse(new TextDecoder().decode(bytes)) as unknown);
    const edit = fc.record({
      document: fc.nat({ max: documents.length - 1 }),
      path: fc.array(fc.nat(), { minLength: 1, maxLength: 6 }),
      value: fc.option(oddValue, { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 2 }), (edits) => {
        const document = structuredClone(documents[edits[0]!.document]);
        for (const { path, value } of edits) {
          const chosen = pathIn(document, path);
          const parent = chosen.slice(0, -1).reduce<Record<string | number, unknown>>((node, key) => node[key] as never, document as never);
          const key = chosen[chosen.length - 1]!;
          if (value === undefined && !Array.isArray(parent)) delete parent[key];
          else parent[key] = structuredClone(value ?? null);
        }
        const manifest = parsedOrRefused(new TextEncoder().encode(JSON.stringify(document)));
        if (manifest !== undefined) expectConsistent(manifest);
      }),
      fuzzParameters({ numRuns: 2_000, timeLimitMs: 2_000 }),
    );
  });
});

describe("readDatasetManifest with an expected sha256", () => {
  it("refuses any other bytes with DATA_LOSS naming the manifest", async () => {
    const path = join(dirs[0]!, "fuzzed.json");
    const sha256 = sha256Hex(manifests[0]!);
    await fuzzAsync({ numRuns: 200, timeLimitMs: 1_000 }, fuzzBytes(manifests.slice(0, 1)), async (bytes) => {
      await writeFile(path, bytes);
      const read = readDatasetManifest(path, { sha256 });
      if (sha256Hex(bytes) === sha256) return void (await read);
      const error = await rejection(read);
      expect([error.code, error.message.startsWith(path)]).toEqual([Code.DATA_LOSS, true]);
    });
  });
});
