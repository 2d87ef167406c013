/**
 * Fuzz of the dataset readers with real files damaged: IDX files (raw and gzipped, as
 * Fashion-MNIST ships them) and the Parquet and Arrow shards of the UCI digits written by
 * trainfleet's converter. Every refusal is a TrainfleetError naming the file (DATA_LOSS for
 * damage, INVALID_ARGUMENT for a pair that does not belong together), never another
 * exception and never a hang. Through a shard file, every byte range is checked against
 * the manifest's sha256 before it is decoded, so a damaged file gives either exactly the
 * undamaged blocks or DATA_LOSS, never other values. Behind that check (a manifest written
 * for the damaged bytes), the format decoders refuse with DATA_LOSS naming the file or
 * give columns of the manifest's shape.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import type { DatasetColumn, DatasetManifest } from "@trainfleet/artifacts";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { convertDigits } from "@trainfleet/testing/fixtures/digits-dataset";
import { fuzzBytes, mutatedBytes } from "@trainfleet/testing/fuzz/byte-mutations";
import { fuzzAsync } from "@trainfleet/testing/fuzz/fuzz-parameters";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readIdx } from "../src/dataset/convert/read-idx.js";
import { writeParquetShard } from "../src/dataset/convert/write-parquet.js";
import { arrowShardFormat } from "../src/dataset/formats/arrow-shard.js";
import { parquetShardFormat } from "../src/dataset/formats/parquet-shard.js";
import type { BlockColumns, ShardFormat } from "../src/dataset/formats/shard-format.js";
import { sampleColumns } from "../src/dataset/formats/shard-format.js";
import { parseIdx } from "../src/dataset/idx.js";
import { openShardFile } from "../src/dataset/shard-file.js";

/** Calls `run`; its value, or undefined once the refusal is checked to be `codes` and to name `file`. */
async function refusedOrValue<T>(run: () => T | Promise<T>, file: string, codes: Code[] = [Code.DATA_LOSS]): Promise<T | undefined> {
  try {
    return await run();
  } catch (error) {
    expect(error, String(error)).toBeInstanceOf(TrainfleetError);
    const { code, message } = error as TrainfleetError;
    expect(codes, message).toContain(code);
    expect(message).toContain(file);
    return undefined;
  }
}

/** An IDX file of unsigned bytes: the magic, the dimensions big-endian, the values. */
function idxFile(dims: number[]): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(4 + 4 * dims.length + count);
  const view = new DataView(out.buffer);
  out.set([0, 0, 0x08, dims.length]);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  for (let i = 0; i < count; i++) out[4 + 4 * dims.length + i] = (i * 37) % 256;
  return out;
}

describe("IDX files", () => {
  const images = idxFile([12, 4, 4]);
  const labels = idxFile([12]);
  const seeds = [images, labels, gzipSync(images), gzipSync(labels)];

  it("parseIdx refuses damaged and random bytes with DATA_LOSS naming the file, or reads dimensions that hold exactly its data", async () => {
    await fuzzAsync({ numRuns: 3_000, timeLimitMs: 2_000 }, fuzzBytes(seeds, 128), async (bytes) => {
      const parsed = await refusedOrValue(() => parseIdx(bytes, "images.idx.gz"), "images.idx.gz");
      if (parsed !== undefined) expect(parsed.data.byteLength).toBe(parsed.dims.reduce((a, b) => a * b, 1));
    });
  });

  it("readIdx refuses a damaged pair with DATA_LOSS or INVALID_ARGUMENT naming a file of the pair", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tf-fuzz-idx-"));
    temporary.push(dir);
    const [imagesPath, labelsPath] = [join(dir, "fuzz-images.idx"), join(dir, "fuzz-labels.idx")];
    await fuzzAsync(
      { numRuns: 300, timeLimitMs: 1_500 },
      fuzzBytes([images, gzipSync(images)], 64),
      fuzzBytes([labels, gzipSync(labels)], 64),
      async (imageBytes, labelBytes) => {
        await writeFile(imagesPath, imageBytes);
        await writeFile(labelsPath, labelBytes);
        try {
          const { table } = await readIdx(imagesPath, labelsPath);
          for (const column of table.columns) expect(column.values.byteLength).toBe(table.records * column.width);
        } catch (error) {
          expect(error, String(error)).toBeInstanceOf(TrainfleetError);
          const { code, message } = error as TrainfleetError;
          expect([Code.DATA_LOSS, Code.INVALID_ARGUMENT], message).toContain(code);
          expect(message.includes(imagesPath) || message.includes(labelsPath), message).toBe(true);
        }
      },
    );
  });
});

const formats = { parquet: parquetShardFormat, arrow: arrowShardFormat } satisfies Record<DatasetManifest["fileFormat"], ShardFormat>;
const converted = new Map<string, { dir: string; manifest: DatasetManifest; file: Uint8Array }>();
/** Folders to remove at the end. */
const temporary: string[] = [];

beforeAll(async () => {
  for (const format of ["parquet", "arrow"] as const) {
    const digits = await convertDigits({ recordsPerFile: 600, recordsPerBlock: 128, format });
    const manifest = JSON.parse(await readFile(join(digits.dir, "dataset.json"), "utf8")) as DatasetManifest;
    converted.set(format, { dir: digits.dir, manifest, file: new Uint8Array(await readFile(join(digits.dir, manifest.files[0]!.path))) });
  }
});
afterAll(async () => {
  for (const dir of [...temporary, ...[...converted.values()].map((c) => c.dir)]) await rm(dir, { recursive: true, force: true });
});

/** A block's columns as plain arrays, for exact comparison. */
const plain = (columns: BlockColumns) => Object.fromEntries([...columns].map(([name, values]) => [name, Array.from(values)]));

describe.each(["parquet", "arrow"] as const)("%s shards of the digits", (format) => {
  it("a damaged file gives exactly the undamaged blocks or DATA_LOSS naming the file, never other values", async () => {
    const { dir, manifest, file } = converted.get(format)!;
    const fuzzedName = `fuzzed-00000.${format}`;
    const damaged: DatasetManifest = { ...manifest, files: [{ ...manifest.files[0]!, path: fuzzedName }] };
    const blocks = manifest.files[0]!.blocks.length;
    const open = () =>
      openShardFile({
        manifestUri: join(dir, "dataset.json"),
        safeManifestUri: "dataset.json",
        manifest: damaged,
        index: 0,
        onRead: () => {},
      });
    await writeFile(join(dir, fuzzedName), file);
    const undamaged = await Promise.all(Array.from({ length: blocks }, (_, i) => open().readBlock(i).then(plain)));
    await fuzzAsync({ numRuns: 300, timeLimitMs: 3_000 }, mutatedBytes([file], 3), fc.nat({ max: blocks - 1 }), async (bytes, block) => {
      await writeFile(join(dir, fuzzedName), bytes);
      const shard = open();
      await refusedOrValue(() => shard.check(), fuzzedName);
      const columns = await refusedOrValue(() => shard.readBlock(block), fuzzedName);
      if (columns !== undefined) expect(plain(columns)).toEqual(undamaged[block]);
    });
  });

  it("behind the sha256 check, the decoder refuses a damaged footer or block with DATA_LOSS naming the file, or gives columns of the manifest's shape", async () => {
    const { manifest, file } = converted.get(format)!;
    const entry = manifest.files[0]!;
    const name = "shard-00000 (files[0] of dataset.json)";
    const footer = file.subarray(entry.footer.offset, entry.footer.offset + entry.footer.length);
    const blockBytes = entry.blocks.map((block) => file.subarray(block.offset, block.offset + block.length));
    const widths = new Map(manifest.schema.map((column) => [column.name, column.length ?? 1]));
    await fuzzAsync(
      { numRuns: 500, timeLimitMs: 3_000 },
      fc.oneof(mutatedBytes([footer], 3), fc.constant(footer)),
      fc.nat({ max: entry.blocks.length - 1 }),
      fuzzBytes(blockBytes, 64),
      async (footerBytes, block, bytes) => {
        const layout = await refusedOrValue(() => formats[format].openFooter(footerBytes, entry, manifest, name), name);
        if (layout === undefined) return;
        const columns = await refusedOrValue(() => layout.decodeBlock(block, bytes), name);
        if (columns === undefined) return;
        const records = entry.blocks[block]!.records;
        expect([...columns.keys()].sort()).toEqual(sampleColumns(manifest).sort());
        for (const [column, values] of columns) expect(values.length, column).toBe(records * widths.get(column)!);
      },
    );
  });
});

describe("found by fuzzing", () => {
  /** The digits' Arrow footer with the length of one of its vectors set to 2^31 - 1: field `field` of the table `path` leads to. */
  function arrowFooterClaiming(path: number[], field: number): Uint8Array {
    const { manifest, file } = converted.get("arrow")!;
    const entry = manifest.files[0]!;
    const footer = file.slice(entry.footer.offset, entry.footer.offset + entry.footer.length);
    // The flatbuffer ends 10 bytes before the file does (its length, then ARROW1).
    const view = new DataView(footer.buffer);
    const tail = footer.byteLength - 10;
    const start = tail - view.getInt32(tail, true);
    const fieldAt = (table: number, index: number) => table + view.getUint16(table - view.getInt32(table, true) + 4 + 2 * index, true);
    const follow = (at: number) => at + view.getUint32(at, true);
    const table = path.reduce((at, index) => follow(fieldAt(at, index)), follow(start));
    view.setUint32(follow(fieldAt(table, field)), 0x7fffffff, true);
    return footer;
  }

  it.each([
    // Footer field 3: the record batches (was a TypeError).
    { what: "record batches", path: [], field: 3 },
    // Footer field 1, the schema; its field 1: its fields (apache-arrow looped over them for minutes).
    { what: "fields", path: [1], field: 1 },
  ])("refuses an Arrow footer that claims two billion $what at once, with DATA_LOSS naming the file", ({ path, field }) => {
    const { manifest } = converted.get("arrow")!;
    const opened = () => arrowShardFormat.openFooter(arrowFooterClaiming(path, field), manifest.files[0]!, manifest, "shard.arrow");
    expect(opened).toThrow(TrainfleetError);
    expect(opened).toThrow(/^shard\.arrow: its Arrow footer is damaged: a vector at byte \d+ claims 2147483647 elements/);
  });

  it("refuses a Parquet row group whose values do not fit the manifest through decodeBlock's rejection, not an unhandled one (which ends a worker)", async () => {
    const schema: DatasetColumn[] = [
      { name: "pixel", type: "uint8" },
      { name: "label", type: "int32" },
    ];
    const table = {
      records: 2,
      columns: [
        { name: "pixel", width: 1, values: Int32Array.of(7, 300) },
        { name: "label", width: 1, values: Int32Array.of(0, 1) },
      ],
    };
    const written = writeParquetShard(table, schema, 2);
    const sha256 = "0".repeat(64);
    const entry = {
      path: "shard.parquet",
      records: 2,
      bytes: written.bytes.byteLength,
      sha256,
      footer: { ...written.footer, sha256 },
      blocks: written.blocks.map((block) => ({ ...block, sha256 })),
    };
    const manifest: DatasetManifest = {
      format: "trainfleet.dataset/v1",
      fileFormat: "parquet",
      records: 2,
      schema,
      features: { columns: ["pixel"], dtype: "float32", shape: [1], scale: 1, offset: 0 },
      label: { kind: "classes", column: "label", classes: 2 },
      files: [entry],
    };
    const layout = parquetShardFormat.openFooter(written.bytes.subarray(entry.footer.offset), entry, manifest, "shard.parquet");
    const block = written.blocks[0]!;
    const refusal = layout.decodeBlock(0, written.bytes.subarray(block.offset, block.offset + block.length));
    await expect(refusal).rejects.toThrow('shard.parquet: row group 0 has a malformed value in column "pixel" at row 1.');
  });
});
