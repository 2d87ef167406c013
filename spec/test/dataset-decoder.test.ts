/**
 * A dataset whose records the job's module decodes (dataset.facts.decodedByModule, pinned from
 * a manifest that says features.decoder "module") needs a module: resolving a spec without one
 * fails naming spec.model.layers.module and the fix, so `submit --dry-run` and `run` refuse the
 * job before any worker starts.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { Code, JobSpecSchema, TrainfleetError } from "@trainfleet/proto";
import { describe, expect, it } from "vitest";
import { resolveJobSpec } from "../src/resolve-job-spec.js";

const facts = {
  digest: "cd".repeat(32),
  trainRecords: 1500,
  evalRecords: 297,
  featureShape: [80],
  classes: 10,
  recordsPerBlock: 100,
  decodedByModule: true,
};
const dataset = { manifest: "data/digits/dataset.json", facts };

function resolveError(init: MessageInitShape<typeof JobSpecSchema>): TrainfleetError {
  try {
    resolveJobSpec(create(JobSpecSchema, init));
  } catch (error) {
    expect(error).toBeInstanceOf(TrainfleetError);
    return error as TrainfleetError;
  }
  throw new Error("expected the spec to be rejected");
}

describe("a dataset decoded by the job's module", () => {
  it("resolves with a Layers model that has a module", () => {
    const spec = resolveJobSpec(
      create(JobSpecSchema, { model: { kind: { case: "layers", value: { uri: "m/model.json", module: "m/decoder.mjs" } } }, dataset }),
    );
    expect(spec.dataset!.facts!.decodedByModule).toBe(true);
  });

  it("refuses a Layers model without a module, naming spec.model.layers.module and the manifest", () => {
    const error = resolveError({ model: { kind: { case: "layers", value: { uri: "m/model.json" } } }, dataset });
    expect([error.code, error.field]).toEqual([Code.INVALID_ARGUMENT, "spec.model.layers.module"]);
    expect(error.message).toContain(
      'spec.model.layers.module: the dataset data/digits/dataset.json says features.decoder "module" (pinned as spec.dataset.facts.decodedByModule)',
    );
    expect(error.message).toContain("give spec.model.layers.module (--model-module) exporting decodeRecords({ records, columns })");
  });

  it.each<[string, MessageInitShape<typeof JobSpecSchema>["model"]]>([
    ["mlp", { kind: { case: "mlp", value: { hiddenUnits: [32] } } }],
    ["cnn", { kind: { case: "cnn", value: { convFilters: [8], kernelSize: 3 } } }],
  ])("refuses the built-in %s, which has no module, saying to bring a model with one", (_name, model) => {
    const error = resolveError({ model, dataset: { ...dataset, facts: { ...facts, featureShape: [8, 10, 1] } } });
    expect([error.code, error.field]).toEqual([Code.INVALID_ARGUMENT, "spec.model.layers.module"]);
    expect(error.message).toContain("give your own model (spec.model.layers, --model-json) with a module (--model-module)");
  });

  it("does not ask for a module when the manifest has no decoder", () => {
    const spec = resolveJobSpec(
      create(JobSpecSchema, {
        model: { kind: { case: "layers", value: { uri: "m/model.json" } } },
        dataset: { ...dataset, facts: { ...facts, featureShape: [64], decodedByModule: false } },
      }),
    );
    expect(spec.dataset!.facts!.decodedByModule).toBe(false);
  });
});
