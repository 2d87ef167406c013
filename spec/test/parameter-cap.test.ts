import { create } from "@bufbuild/protobuf";
import { Code, DatasetSpecSchema, JobSpecSchema, TrainfleetError } from "@trainfleet/proto";
import { describe, expect, it } from "vitest";
import { dataShape } from "../src/data-shape.js";
import { parameterLayout } from "../src/parameter-layout.js";
import { resolveJobSpec } from "../src/resolve-job-spec.js";
import { maxParameterCount } from "../src/validate-job-spec.js";

const mlp = (hiddenUnits: number[]) => create(JobSpecSchema, { model: { kind: { case: "mlp", value: { hiddenUnits } } } });
const count = (hiddenUnits: number[]) =>
  parameterLayout(mlp(hiddenUnits).model!, dataShape(create(DatasetSpecSchema, { name: "fashion-mnist" }))).parameterCount;

describe("the parameter count a spec may ask for", () => {
  it("refuses --hidden 65536,65536 (4.3 billion parameters) naming the field, the count and the maximum", () => {
    const parameters = count([65536, 65536]);
    expect(parameters).toBeGreaterThan(4_000_000_000);
    let thrown: unknown;
    try {
      resolveJobSpec(mlp([65536, 65536]));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(TrainfleetError);
    expect((thrown as TrainfleetError).code).toBe(Code.INVALID_ARGUMENT);
    expect((thrown as TrainfleetError).field).toBe("spec.model.mlp.hiddenUnits");
    expect((thrown as TrainfleetError).message).toBe(
      `spec.model.mlp.hiddenUnits: asks for ${parameters} parameters; at most 1000000000 are allowed (the maximum trainfleet takes): use smaller layers`,
    );
  });

  it("takes a model just under the cap and refuses one just over it", () => {
    // 784 inputs, one hidden layer of h, 10 outputs: 785h + 11h-ish; find both sides of the cap.
    let below = 1;
    while (count([below * 2]) <= maxParameterCount && below * 2 <= 65536) below *= 2;
    expect(count([below])).toBeLessThanOrEqual(maxParameterCount);
    expect(() => resolveJobSpec(mlp([below]))).not.toThrow();
    const over = [65536, Math.ceil(maxParameterCount / 65536)];
    expect(count(over)).toBeGreaterThan(maxParameterCount);
    expect(() => resolveJobSpec(mlp(over))).toThrow(/at most 1000000000 are allowed/);
  });
});
