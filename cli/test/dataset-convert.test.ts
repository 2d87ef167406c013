import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { convertDataset } from "@trainfleet/worker/dataset";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { namePositionals } from "../src/command.js";
import { convertOptions, datasetCommand } from "../src/commands/dataset.js";
import { parseFlags, UsageError } from "../src/flags.js";

let dir: string;
let input: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tf-cli-convert-"));
  input = join(dir, "pixels.csv.gz");
  // 20 rows of four pixels 0..255 and a class 0..2, no header.
  const rows = Array.from({ length: 20 }, (_, r) => [r, 2 * r, 255 - r, (r * 7) % 256, r % 3].join(","));
  await writeFile(input, gzipSync(`${rows.join("\n")}\n`));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function flags(args: string[]) {
  return parseFlags(datasetCommand.flags, namePositionals(datasetCommand, args), {});
}

describe("trainfleet dataset convert", () => {
  it("maps its flags to the converter, which writes the manifests it names", async () => {
    const out = join(dir, "out");
    const lines: string[] = [];
    const values = flags([
      "convert",
      input,
      "--out",
      out,
      "--format",
      "arrow",
      "--scale",
      "1/255",
      "--shape",
      "2,2,1",
      "--eval-fraction",
      "0.25",
      "--records-per-block",
      "4",
    ]);
    const options = convertOptions(values, undefined, (line) => lines.push(line));
    expect(options).toMatchObject({
      input,
      out,
      fileFormat: "arrow",
      scale: 1 / 255,
      shape: [2, 2, 1],
      evalFraction: 0.25,
      recordsPerBlock: 4,
      recordsPerFile: 50000,
      seed: 0,
      shuffle: false,
      regression: false,
    });
    expect(options.labelColumns).toBeUndefined();
    const result = await convertDataset(options);
    expect([result.train.records, result.evaluation?.records]).toEqual([15, 5]);
    const manifest = JSON.parse(await readFile(join(out, "dataset.json"), "utf8"));
    expect(manifest.fileFormat).toBe("arrow");
    expect(manifest.features).toEqual({ columns: ["c0", "c1", "c2", "c3"], dtype: "float32", shape: [2, 2, 1], scale: 1 / 255, offset: 0 });
    expect(manifest.label).toEqual({ kind: "classes", column: "c4", classes: 3 });
    expect(lines.some((line) => line.includes(join(out, "eval-dataset.json")))).toBe(true);
  });

  it("splits list flags and refuses a scale that is not a number", () => {
    const options = convertOptions(
      flags(["convert", input, "--out", dir, "--regression", "--label-column", "c3, c4", "--feature-columns", "0,1"]),
      undefined,
      () => {},
    );
    expect([options.labelColumns, options.featureColumns, options.regression]).toEqual([["c3", "c4"], ["0", "1"], true]);
    expect(() => convertOptions(flags(["convert", input, "--out", dir, "--scale", "1/x"]), undefined, () => {})).toThrow(UsageError);
  });

  it("refuses an unknown action and a missing --out", () => {
    expect(() => flags(["inspect", input])).toThrow('"inspect" is not one of convert');
    let error: unknown;
    try {
      convertOptions(flags(["convert", input]), undefined, () => {});
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TrainfleetError);
    expect((error as TrainfleetError).code).toBe(Code.INVALID_ARGUMENT);
    expect((error as TrainfleetError).message).toContain("--out is required");
  });
});
