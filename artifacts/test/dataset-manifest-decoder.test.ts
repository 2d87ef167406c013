/**
 * features.decoder "module" in a manifest: the shape is what the job's module decodes a record
 * into (any shape, not the columns' width), there is no scale or offset (giving one is refused,
 * saying the decoder does its own scaling), and no other decoder is known.
 */
import { Code, TrainfleetError } from "@trainfleet/proto";
import { describe, expect, it } from "vitest";
import { featureWidth, parseDatasetManifest } from "../src/dataset-manifest.js";

const H = (c: string) => c.repeat(64);

/** One file of one block: 64 uint8 pixels a record and a class label; `features` as given. */
function manifest(features: Record<string, unknown>): Record<string, unknown> {
  return {
    format: "trainfleet.dataset/v1",
    fileFormat: "arrow",
    records: 10,
    schema: [
      { name: "pixels", type: "uint8", length: 64 },
      { name: "digit", type: "int32" },
    ],
    features: { columns: ["pixels"], dtype: "float32", ...features },
    label: { kind: "classes", column: "digit", classes: 10 },
    files: [
      {
        path: "train-00000.arrow",
        records: 10,
        bytes: 1000,
        sha256: H("a"),
        footer: { offset: 900, length: 100, sha256: H("b") },
        blocks: [{ records: 10, offset: 8, length: 800, sha256: H("c") }],
      },
    ],
  };
}

const parse = (value: unknown) => parseDatasetManifest(new TextEncoder().encode(JSON.stringify(value)), "/data/dataset.json");

function refusal(value: unknown): TrainfleetError {
  try {
    parse(value);
  } catch (error) {
    expect(error).toBeInstanceOf(TrainfleetError);
    return error as TrainfleetError;
  }
  throw new Error("expected the manifest to be refused");
}

describe("a manifest whose features the job's module decodes", () => {
  it.each([
    ["more values than the columns hold", [80]],
    ["fewer values than the columns hold", [10]],
    ["a shape of several dimensions", [4, 4, 5]],
    ["as many values as the columns hold", [8, 8, 1]],
  ])("accepts %s (%j) as the decoded shape, keeping no scale or offset", (_name, shape) => {
    const parsed = parse(manifest({ shape, decoder: "module" }));
    expect(parsed.features).toEqual({ columns: ["pixels"], dtype: "float32", shape, decoder: "module" });
    expect(featureWidth(parsed)).toBe(shape.reduce((a, b) => a * b, 1));
  });

  it("without a decoder, keeps its scale and offset and no decoder field", () => {
    const parsed = parse(manifest({ shape: [64], scale: 0.5, offset: 1 }));
    expect(parsed.features).toEqual({ columns: ["pixels"], dtype: "float32", shape: [64], scale: 0.5, offset: 1 });
    expect("decoder" in parsed.features).toBe(false);
  });

  it("without a decoder, still refuses a shape that is not the columns' width, pointing at the decoder", () => {
    const error = refusal(manifest({ shape: [80], scale: 1, offset: 0 }));
    expect([error.code, error.field]).toEqual([Code.INVALID_ARGUMENT, "features.shape"]);
    expect(error.message).toContain("give a shape whose product is 64");
    expect(error.message).toContain('features.decoder "module"');
  });

  it.each([
    ["scale", { scale: 1 / 16 }],
    ["offset", { offset: 0 }],
    ["scale", { scale: 1, offset: 0 }],
  ])("refuses features.%s beside the decoder, saying the decoder does its own scaling", (field, extra) => {
    const error = refusal(manifest({ shape: [80], decoder: "module", ...extra }));
    expect(error.code).toBe(Code.INVALID_ARGUMENT);
    expect(error.field).toBe(`features.${field}`);
    expect(error.message).toContain(`/data/dataset.json: features.${field}: `);
    expect(error.message).toContain("the decoder does its own scaling");
  });

  it.each([["python"], [""], [null], [true]])("refuses the unknown decoder %j, naming the one there is", (decoder) => {
    const error = refusal(manifest({ shape: [80], decoder }));
    expect([error.code, error.field]).toEqual([Code.INVALID_ARGUMENT, "features.decoder"]);
    expect(error.message).toContain('expected one of "module"');
  });

  it("still checks the shape's dimensions and the columns with a decoder", () => {
    expect(refusal(manifest({ shape: [0, 8], decoder: "module" })).field).toBe("features.shape[0]");
    expect(refusal(manifest({ shape: [], decoder: "module" })).field).toBe("features.shape");
    const noColumn = manifest({ shape: [80], decoder: "module" });
    (noColumn.features as Record<string, unknown>).columns = ["image"];
    expect(refusal(noColumn).field).toBe("features.columns[0]");
  });
});
