/**
 * `trainfleet dataset convert --decoder module`: the manifest says features.decoder "module"
 * with --shape as the decoded shape and no scale; a decoder other than module is a usage error.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "@trainfleet/proto";
import { rejection } from "@trainfleet/testing/rejection";
import { convertDataset } from "@trainfleet/worker/dataset";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { namePositionals } from "../src/command.js";
import { convertOptions, datasetCommand } from "../src/commands/dataset.js";
import { parseFlags } from "../src/flags.js";

let dir: string;
let input: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tf-cli-decoder-"));
  input = join(dir, "pixels.csv");
  // 12 rows of four pixels and a class 0..2, no header.
  await writeFile(input, `${Array.from({ length: 12 }, (_, r) => [r, 2 * r, 255 - r, r % 7, r % 3].join(",")).join("\n")}\n`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const options = (args: string[]) =>
  convertOptions(
    parseFlags(datasetCommand.flags, namePositionals(datasetCommand, ["convert", input, "--out", join(dir, "out"), ...args]), {}),
    undefined,
    () => {},
  );

describe("trainfleet dataset convert --decoder", () => {
  it("module: writes features.decoder and the decoded --shape, with no scale or offset", async () => {
    const given = options(["--decoder", "module", "--shape", "3,2"]);
    expect([given.decoder, given.shape, given.scale, given.offset]).toEqual(["module", [3, 2], undefined, undefined]);
    const result = await convertDataset(given);
    const manifest = JSON.parse(await readFile(result.train.path, "utf8"));
    expect(manifest.features).toEqual({ columns: ["c0", "c1", "c2", "c3"], dtype: "float32", shape: [3, 2], decoder: "module" });
  });

  it("without the flag, writes no decoder", () => {
    expect(options(["--shape", "4"]).decoder).toBeUndefined();
  });

  it("refuses a decoder other than module, and --scale beside it", async () => {
    expect(() => options(["--decoder", "python", "--shape", "6"])).toThrow('"python" is not one of module');
    const error = await rejection(convertDataset(options(["--decoder", "module", "--shape", "6", "--scale", "1/255"])));
    expect([error.code, error.field]).toEqual([Code.INVALID_ARGUMENT, "--scale"]);
    expect(error.message).toContain("the decoder does its own scaling");
  });
});
