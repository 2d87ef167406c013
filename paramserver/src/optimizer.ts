/**
 * Optimizers over a shard's slice of the parameters, one chunk at a time. The math is in
 * tf.js's form (see job.proto) so that a single process training with tf.train.* gives
 * the same result to float tolerance. Values are stored as float32 after each update.
 *
 * An update reads the parameters and the optimizer state of the current version and
 * writes those of the next elsewhere (`out`, and the state's second buffer), so that a
 * shard can apply a step chunk by chunk and still drop it whole; `commit` makes the
 * written state current. `out` may be `params` itself for an in-place update. Since
 * commit is a swap, the state before it stays in the second buffers until the next
 * apply writes them: `rollback` swaps back (a shard going back one version when a new
 * generation abandons a step that it completed and another shard did not).
 *
 * The state lives in the kernel memory (kernelMemory() in @trainfleet/proto); when the
 * parameters and the gradient are there too, an update runs as WebAssembly SIMD: the same
 * double-precision operations in the same order, rounded to float32 where the JavaScript
 * stores, hence the same bits. The JavaScript loops are the specification, the fallback
 * for other arrays, and do the tail of fewer than 4 elements.
 *
 * A checkpoint holds the state of the current version (`state()`: SGD none, SGD with
 * momentum the velocity, Adam m then v) and a restore puts it back (`restoreState`). Adam's
 * update count is not state: it is the version the shard is at.
 */

import type { WasmKernels } from "@trainfleet/kernels";
import { kernelCalls, kernelFloat32Array, kernelOperandsCompatible, kernelPointer, wasmKernels } from "@trainfleet/kernels";
import type { OptimizerSpec } from "@trainfleet/proto";
import { invalidField } from "@trainfleet/proto";

/** The optimizers by the state they keep, as checkpoints record them. */
export type OptimizerKind = "sgd" | "sgd-momentum" | "adam";

/** How many state arrays, each of the slice's size, each kind keeps. */
export const optimizerStateArrays: Readonly<Record<OptimizerKind, number>> = { sgd: 0, "sgd-momentum": 1, adam: 2 };

export interface Optimizer {
  readonly kind: OptimizerKind;
  /**
   * Writes into out[from, to) the parameters params[from, to) after update number `t` (1
   * for the first step) with the averaged gradient of those elements, which `gradient`
   * holds from its index 0 (gradient[i - from] is element i's).
   */
  apply(params: Float32Array, gradient: Float32Array, out: Float32Array, from: number, to: number, t: number): void;
  /** Every chunk of the step has been applied: the state it wrote becomes the current one. */
  commit(): void;
  /**
   * Undoes the last commit(): the state before it becomes the current one again. Only
   * right while no apply() has run since that commit (apply writes the buffers that hold
   * it) and once per commit; the caller checks both.
   */
  rollback(): void;
  /**
   * The state of the current version, optimizerStateArrays[kind] arrays (live views:
   * copy them before the next step's commit makes their buffers the ones it writes).
   */
  state(): Float32Array[];
  /** Makes `state` (copied, in the order state() gives) the current state. */
  restoreState(state: readonly Float32Array[]): void;
}

/** The kind of optimizer a spec makes, by the state it keeps. */
export function optimizerKind(spec: OptimizerSpec): OptimizerKind {
  switch (spec.kind.case) {
    case "sgd":
      return spec.kind.value.momentum === 0 ? "sgd" : "sgd-momentum";
    case "adam":
      return "adam";
    default:
      throw invalidField("spec.training.optimizer", "choose an optimizer: sgd or adam");
  }
}

export function createOptimizer(spec: OptimizerSpec | undefined, size: number): Optimizer {
  switch (spec?.kind.case) {
    case "sgd":
      return spec.kind.value.momentum === 0
        ? sgd(spec.kind.value.learningRate)
        : sgdMomentum(spec.kind.value.learningRate, spec.kind.value.momentum, size);
    case "adam": {
      const { learningRate, beta1, beta2, epsilon } = spec.kind.value;
      return adam(learningRate, beta1, beta2, epsilon, size);
    }
    default:
      throw invalidField("spec.training.optimizer", "choose an optimizer: sgd or adam");
  }
}

/** State that is read from one buffer and written to the other, swapped by commit(). */
class DoubleBuffered {
  #buffers: [Float32Array, Float32Array];
  constructor(size: number) {
    this.#buffers = [kernelFloat32Array(size), kernelFloat32Array(size)];
  }
  get current(): Float32Array {
    return this.#buffers[0];
  }
  get next(): Float32Array {
    return this.#buffers[1];
  }
  swap(): void {
    this.#buffers = [this.#buffers[1], this.#buffers[0]];
  }
}

/** Copies `state` into the current buffers of `targets`, checking the count and the lengths. */
function restoreInto(kind: OptimizerKind, targets: readonly DoubleBuffered[], state: readonly Float32Array[]): void {
  if (state.length !== targets.length) {
    throw invalidField("state", `${kind} keeps ${targets.length} state arrays, got ${state.length}`);
  }
  targets.forEach((target, i) => {
    const values = state[i]!;
    if (values.length !== target.current.length) {
      throw invalidField("state", `${kind} state array ${i} has ${values.length} elements, the slice has ${target.current.length}`);
    }
    target.current.set(values);
  });
}

/**
 * The kernels and the byte addresses of the chunk in each array, when every array is in
 * the kernel memory; else undefined (the JavaScript path). `arrays` are indexed by
 * element; the gradient by element - from. The update goes element by element, so an
 * output may be its own input (out === params) but must not overlap anything otherwise.
 */
function wasmOperands(
  arrays: readonly Float32Array[],
  gradient: Float32Array,
  from: number,
  to: number,
): { kernels: WasmKernels; pointers: number[] } | undefined {
  const pointers: number[] = [];
  const bytes = (to - from) * 4;
  const all = [...arrays.map((array) => kernelPointer(array, from, to)), kernelPointer(gradient, 0, to - from)];
  for (const pointer of all) {
    if (pointer < 0) return undefined;
    for (const other of pointers) if (!kernelOperandsCompatible(pointer, bytes, other, bytes, true)) return undefined;
    pointers.push(pointer);
  }
  const kernels = wasmKernels();
  return kernels === undefined ? undefined : { kernels, pointers };
}

function sgd(learningRate: number): Optimizer {
  const js = (params: Float32Array, gradient: Float32Array, out: Float32Array, from: number, to: number) => {
    for (let i = from; i < to; i++) out[i] = params[i]! - learningRate * gradient[i - from]!;
  };
  return {
    kind: "sgd",
    apply(params, gradient, out, from, to) {
      const wasm = wasmOperands([params, out], gradient, from, to);
      if (wasm === undefined) {
        kernelCalls.sgd.js++;
        return js(params, gradient, out, from, to);
      }
      kernelCalls.sgd.wasm++;
      const [p, o, g] = wasm.pointers as [number, number, number];
      const count = (to - from) & ~3;
      if (count > 0) wasm.kernels.sgd(p, g, o, count, learningRate);
      js(params, gradient.subarray(count), out, from + count, to);
    },
    commit() {},
    rollback() {},
    state: () => [],
    restoreState: (state) => restoreInto("sgd", [], state),
  };
}

function sgdMomentum(learningRate: number, momentum: number, size: number): Optimizer {
  const velocity = new DoubleBuffered(size);
  const js = (params: Float32Array, gradient: Float32Array, out: Float32Array, from: number, to: number) => {
    const [current, next] = [velocity.current, velocity.next];
    for (let i = from; i < to; i++) {
      // Stored as float32 first, then used: the update reads the rounded velocity.
      const v = (next[i] = momentum * current[i]! + gradient[i - from]!);
      out[i] = params[i]! - learningRate * Math.fround(v);
    }
  };
  return {
    kind: "sgd-momentum",
    apply(params, gradient, out, from, to) {
      const wasm = wasmOperands([params, out, velocity.current, velocity.next], gradient, from, to);
      if (wasm === undefined) {
        kernelCalls.sgdMomentum.js++;
        return js(params, gradient, out, from, to);
      }
      kernelCalls.sgdMomentum.wasm++;
      const [p, o, v, vNext, g] = wasm.pointers as [number, number, number, number, number];
      const count = (to - from) & ~3;
      if (count > 0) wasm.kernels.sgdMomentum(p, g, v, o, vNext, count, learningRate, momentum);
      js(params, gradient.subarray(count), out, from + count, to);
    },
    commit: () => velocity.swap(),
    rollback: () => velocity.swap(),
    state: () => [velocity.current],
    restoreState: (state) => restoreInto("sgd-momentum", [velocity], state),
  };
}

function adam(learningRate: number, beta1: number, beta2: number, epsilon: number, size: number): Optimizer {
  const m = new DoubleBuffered(size);
  const v = new DoubleBuffered(size);
  const js = (
    params: Float32Array,
    gradient: Float32Array,
    out: Float32Array,
    from: number,
    to: number,
    correction1: number,
    correction2: number,
  ) => {
    const [mNow, mNext, vNow, vNext] = [m.current, m.next, v.current, v.next];
    for (let i = from; i < to; i++) {
      const g = gradient[i - from]!;
      mNext[i] = beta1 * mNow[i]! + (1 - beta1) * g;
      vNext[i] = beta2 * vNow[i]! + (1 - beta2) * g * g;
      out[i] = params[i]! - (learningRate * (mNext[i]! / correction1)) / (Math.sqrt(vNext[i]! / correction2) + epsilon);
    }
  };
  return {
    kind: "adam",
    apply(params, gradient, out, from, to, t) {
      const correction1 = 1 - beta1 ** t;
      const correction2 = 1 - beta2 ** t;
      const wasm = wasmOperands([params, out, m.current, m.next, v.current, v.next], gradient, from, to);
      if (wasm === undefined) {
        kernelCalls.adam.js++;
        return js(params, gradient, out, from, to, correction1, correction2);
      }
      kernelCalls.adam.wasm++;
      const [p, o, mp, mNext, vp, vNext, g] = wasm.pointers as [number, number, number, number, number, number, number];
      const count = (to - from) & ~3;
      if (count > 0)
        wasm.kernels.adam(
          p,
          g,
          mp,
          vp,
          o,
          mNext,
          vNext,
          count,
          learningRate,
          beta1,
          1 - beta1,
          beta2,
          1 - beta2,
          correction1,
          correction2,
          epsilon,
        );
      js(params, gradient.subarray(count), out, from + count, to, correction1, correction2);
    },
    commit() {
      m.swap();
      v.swap();
    },
    rollback() {
      m.swap();
      v.swap();
    },
    state: () => [m.current, v.current],
    restoreState: (state) => restoreInto("adam", [m, v], state),
  };
}
