/**
 * Optimizers over a shard's slice of the parameters, one chunk at a time. The math is in
 * tf.js's form (see job.proto) so that a single process training with tf.train.* gives
 * the same result to float tolerance. Values are stored as float32 after each update.
 */
import type { OptimizerSpec } from "@trainfleet/proto";
import { invalidField } from "@trainfleet/proto";

export interface Optimizer {
  /**
   * Applies the averaged gradient of elements [from, to) (indices into the shard's slice)
   * for update number `t` (1 for the first step).
   */
  apply(params: Float32Array, gradient: Float32Array, from: number, to: number, t: number): void;
}

export function createOptimizer(spec: OptimizerSpec | undefined, size: number): Optimizer {
  switch (spec?.kind.case) {
    case "sgd":
      return sgd(spec.kind.value.learningRate, spec.kind.value.momentum, size);
    case "adam": {
      const { learningRate, beta1, beta2, epsilon } = spec.kind.value;
      return adam(learningRate, beta1, beta2, epsilon, size);
    }
    default:
      throw invalidField("spec.training.optimizer", "choose an optimizer: sgd or adam");
  }
}

function sgd(learningRate: number, momentum: number, size: number): Optimizer {
  if (momentum === 0) {
    return {
      apply(params, gradient, from, to) {
        for (let i = from; i < to; i++) params[i] = params[i]! - learningRate * gradient[i]!;
      },
    };
  }
  const velocity = new Float32Array(size);
  return {
    apply(params, gradient, from, to) {
      for (let i = from; i < to; i++) {
        // Stored as float32 first, then used: the update reads the rounded velocity.
        const v = (velocity[i] = momentum * velocity[i]! + gradient[i]!);
        params[i] = params[i]! - learningRate * Math.fround(v);
      }
    },
  };
}

function adam(learningRate: number, beta1: number, beta2: number, epsilon: number, size: number): Optimizer {
  const m = new Float32Array(size);
  const v = new Float32Array(size);
  return {
    apply(params, gradient, from, to, t) {
      const correction1 = 1 - beta1 ** t;
      const correction2 = 1 - beta2 ** t;
      for (let i = from; i < to; i++) {
        const g = gradient[i]!;
        m[i] = beta1 * m[i]! + (1 - beta1) * g;
        v[i] = beta2 * v[i]! + (1 - beta2) * g * g;
        params[i] = params[i]! - (learningRate * (m[i]! / correction1)) / (Math.sqrt(v[i]! / correction2) + epsilon);
      }
    },
  };
}
