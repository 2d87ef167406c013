/**
 * Which loss a model trains with, and the loss as tf.js computes it. The loss comes from
 * the job spec (an enum), else from a user's module, else from what model.compile()
 * recorded in the model's trainingConfig (tf.js and Keras spellings alike). The formulas
 * here are tf.js's own (tfjs-layers losses.ts, with its epsilon clipping), so a model whose
 * last layer is not fused into its loss trains as `model.fit` would train it.
 */
import * as tf from "@tensorflow/tfjs-core";
import { Code, Loss, TrainfleetError } from "@trainfleet/proto";
import type { UserModelModule } from "./user-module.js";

export type LossName = "sparseCategoricalCrossentropy" | "categoricalCrossentropy" | "meanSquaredError" | "binaryCrossentropy";

export interface ModelLoss {
  /** A built-in loss, or "module" for the user module's loss(tf, labels, predictions). */
  name: LossName | "module";
  /** Keras's from_logits: the model's output is logits, not probabilities. */
  fromLogits: boolean;
  /** Where it came from, for messages: "spec.model.layers.loss", "the model's trainingConfig", ... */
  source: string;
  module?: UserModelModule["loss"];
}

const specLosses: Record<number, LossName> = {
  [Loss.SPARSE_CATEGORICAL_CROSSENTROPY]: "sparseCategoricalCrossentropy",
  [Loss.CATEGORICAL_CROSSENTROPY]: "categoricalCrossentropy",
  [Loss.MEAN_SQUARED_ERROR]: "meanSquaredError",
  [Loss.BINARY_CROSSENTROPY]: "binaryCrossentropy",
};

/** Spellings, lower-cased without underscores: tf.js's camelCase, Keras's snake_case and class names. */
const spellings: Record<string, LossName> = {
  sparsecategoricalcrossentropy: "sparseCategoricalCrossentropy",
  categoricalcrossentropy: "categoricalCrossentropy",
  meansquarederror: "meanSquaredError",
  mse: "meanSquaredError",
  binarycrossentropy: "binaryCrossentropy",
};

/** Whether tf.js knows `name` as a loss (in its own or Keras's spelling), so that it can load a trainingConfig naming it. */
export function isKnownLoss(name: unknown): boolean {
  return typeof name === "string" && spellings[name.toLowerCase().replaceAll("_", "")] !== undefined;
}

export function isCrossEntropy(name: ModelLoss["name"]): boolean {
  return name === "sparseCategoricalCrossentropy" || name === "categoricalCrossentropy";
}

/**
 * The loss a model trains with: spec.model.layers.loss when set, else the module's loss,
 * else the trainingConfig's. `describe` names the model in messages.
 */
export function resolveLoss(
  specLoss: Loss,
  moduleLoss: UserModelModule["loss"] | undefined,
  trainingConfig: Record<string, unknown> | undefined,
  describe: string,
): ModelLoss {
  const fromSpec = specLosses[specLoss];
  if (fromSpec !== undefined) return { name: fromSpec, fromLogits: false, source: "spec.model.layers.loss" };
  if (moduleLoss !== undefined) return { name: "module", fromLogits: false, source: "spec.model.layers.module", module: moduleLoss };
  const recorded = singleLoss(trainingConfig?.loss);
  if (recorded === undefined) {
    throw new TrainfleetError(
      Code.FAILED_PRECONDITION,
      `${describe} has no loss: give spec.model.layers.loss (--loss) or compile the model before saving it ` +
        "(tf.js: model.compile({loss: 'sparseCategoricalCrossentropy', ...}), then model.save(..., {includeOptimizer: true}), " +
        "which is when tf.js keeps the loss)",
      { field: "spec.model.layers.loss" },
    );
  }
  const name = spellings[recorded.name.toLowerCase().replaceAll("_", "")];
  if (name === undefined) {
    throw new TrainfleetError(
      Code.FAILED_PRECONDITION,
      `${describe}: the loss "${recorded.name}" of its trainingConfig is not one trainfleet knows ` +
        `(${Object.values(specLosses).join(", ")}): give spec.model.layers.loss (--loss), or a module (spec.model.layers.module, --model-module) that exports loss(tf, labels, predictions)`,
      { field: "spec.model.layers.loss" },
    );
  }
  return { name, fromLogits: recorded.fromLogits, source: "the model's trainingConfig" };
}

/** The loss of a one-output model's trainingConfig: a name, a Keras {class_name, config}, or a one-entry list or map of either. */
function singleLoss(loss: unknown): { name: string; fromLogits: boolean } | undefined {
  if (typeof loss === "string") return { name: loss, fromLogits: false };
  if (Array.isArray(loss)) return loss.length === 1 ? singleLoss(loss[0]) : undefined;
  if (typeof loss !== "object" || loss === null) return undefined;
  const object = loss as Record<string, unknown>;
  if (typeof object.class_name === "string") {
    const config = (object.config ?? {}) as Record<string, unknown>;
    return { name: object.class_name, fromLogits: config.from_logits === true || config.fromLogits === true };
  }
  const values = Object.values(object);
  return values.length === 1 ? singleLoss(values[0]) : undefined;
}

/** tf.js's epsilon, which its losses clip probabilities with. */
function epsilon(): number {
  return tf.backend().epsilon();
}

/**
 * Per-example loss of `output` against `targets`, as tf.js computes it: one-hot targets for
 * the cross-entropies (sparse labels are one-hot encoded first), values for the others.
 */
export function perExampleLoss(loss: ModelLoss, targets: tf.Tensor2D, output: tf.Tensor2D): tf.Tensor1D {
  switch (loss.name) {
    case "sparseCategoricalCrossentropy":
      // tf.js clips once before one-hot encoding and again inside categoricalCrossentropy.
      return categoricalCrossentropy(targets, loss.fromLogits ? output : tf.clipByValue(output, epsilon(), 1 - epsilon()), loss.fromLogits);
    case "categoricalCrossentropy":
      return categoricalCrossentropy(targets, output, loss.fromLogits);
    case "meanSquaredError":
      return tf.mean(tf.square(tf.sub(output, targets)), -1);
    case "binaryCrossentropy": {
      const logits = loss.fromLogits ? output : logitsOf(output);
      return tf.mean(tf.add(tf.sub(tf.relu(logits), tf.mul(logits, targets)), tf.log1p(tf.exp(tf.neg(tf.abs(logits))))), -1);
    }
    case "module":
      throw new TrainfleetError(Code.INTERNAL, "a module's loss has no per-example form");
  }
}

function categoricalCrossentropy(targets: tf.Tensor2D, output: tf.Tensor2D, fromLogits: boolean): tf.Tensor1D {
  const probabilities = fromLogits ? tf.softmax(output) : tf.div(output, tf.sum(output, -1, true));
  const clipped = tf.clipByValue(probabilities, epsilon(), 1 - epsilon());
  return tf.neg(tf.sum<tf.Tensor1D>(tf.mul(targets, tf.log(clipped)), -1));
}

/** tf.js's binaryCrossentropy turns clipped probabilities back into logits. */
function logitsOf(probabilities: tf.Tensor2D): tf.Tensor2D {
  const clipped = tf.clipByValue(probabilities, epsilon(), 1 - epsilon());
  return tf.log(tf.div<tf.Tensor2D>(clipped, tf.sub(1, clipped)));
}
