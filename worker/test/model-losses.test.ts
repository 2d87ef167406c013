import * as tf from "@tensorflow/tfjs-core";
import { Code, Loss, TrainfleetError } from "@trainfleet/proto";
import { describe, expect, it } from "vitest";
import { resolveLoss } from "../src/compute/losses.js";

const moduleLoss = (_: unknown, __: tf.Tensor, predictions: tf.Tensor) => tf.mean(predictions) as tf.Scalar;

function refused(fn: () => unknown): TrainfleetError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TrainfleetError);
    return error as TrainfleetError;
  }
  throw new Error("expected a refusal");
}

describe("resolveLoss", () => {
  it("takes the spec's loss first, then the module's, then the trainingConfig's", () => {
    const config = { loss: "meanSquaredError" };
    expect(resolveLoss(Loss.BINARY_CROSSENTROPY, moduleLoss, config, "m")).toEqual({
      name: "binaryCrossentropy",
      fromLogits: false,
      source: "spec.model.layers.loss",
    });
    expect(resolveLoss(Loss.UNSPECIFIED, moduleLoss, config, "m")).toMatchObject({ name: "module", source: "spec.model.layers.module" });
    expect(resolveLoss(Loss.UNSPECIFIED, undefined, config, "m")).toEqual({
      name: "meanSquaredError",
      fromLogits: false,
      source: "the model's trainingConfig",
    });
  });

  it.each([
    ["sparse_categorical_crossentropy", "sparseCategoricalCrossentropy", false],
    ["sparseCategoricalCrossentropy", "sparseCategoricalCrossentropy", false],
    ["categorical_crossentropy", "categoricalCrossentropy", false],
    ["mse", "meanSquaredError", false],
    ["mean_squared_error", "meanSquaredError", false],
    ["binary_crossentropy", "binaryCrossentropy", false],
    [["sparse_categorical_crossentropy"], "sparseCategoricalCrossentropy", false],
    [{ output: "binary_crossentropy" }, "binaryCrossentropy", false],
    [{ class_name: "SparseCategoricalCrossentropy", config: { from_logits: true } }, "sparseCategoricalCrossentropy", true],
    [{ class_name: "BinaryCrossentropy", config: { from_logits: false } }, "binaryCrossentropy", false],
  ])("reads the trainingConfig loss %j as %s (from logits: %s)", (loss, name, fromLogits) => {
    expect(resolveLoss(Loss.UNSPECIFIED, undefined, { loss }, "m")).toMatchObject({ name, fromLogits });
  });

  it("refuses no loss at all, and one it does not know, saying where to give one", () => {
    const none = refused(() => resolveLoss(Loss.UNSPECIFIED, undefined, undefined, "model.json"));
    expect(none.code).toBe(Code.FAILED_PRECONDITION);
    expect(none.field).toBe("spec.model.layers.loss");
    expect(none.message).toContain("model.json has no loss: give spec.model.layers.loss");
    expect(none.message).toContain("includeOptimizer: true");
    const unknown = refused(() => resolveLoss(Loss.UNSPECIFIED, undefined, { loss: "huber" }, "model.json"));
    expect(unknown.message).toContain('the loss "huber" of its trainingConfig is not one trainfleet knows');
  });
});
