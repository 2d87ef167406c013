/**
 * The parameter server's WebAssembly kernels against their JavaScript specification: the
 * rank-order average, the finite check and the optimizers give the same bits on arrays in
 * the kernel memory (wasm) as on ordinary arrays (the JavaScript loops), and the shard's
 * hot path really takes the wasm path.
 *
 * One exception, by necessity: where a float operation's result is NaN, only NaN-ness is
 * compared. JavaScript does not define which NaN a Float32Array store writes (ECMAScript
 * leaves the encoding to the implementation), and V8's does vary with the code it runs
 * (the payload of one operand or the other, or the canonical 0x7fc00000). Every non-NaN
 * result, infinities and signed zeros included, must be bit for bit the same. The 16-bit
 * conversions (integer operations) are compared bit for bit, NaNs included, in
 * kernels/test/kernels.test.ts.
 */
import { create } from "@bufbuild/protobuf";
import type { KernelName } from "@trainfleet/kernels";
import { kernelCalls, kernelCallsDuring, kernelMemory } from "@trainfleet/kernels";
import type { OptimizerSpec } from "@trainfleet/proto";
import { ModelSpecSchema, OptimizerSpecSchema, PushRequestSchema } from "@trainfleet/proto";
import { dataShape, parameterLayout } from "@trainfleet/spec";
import { seededRandom } from "@trainfleet/testing/seeded-random";
import { describe, expect, it } from "vitest";
import { averageInRankOrder, averageInRankOrderJs } from "../src/aggregate.js";
import { createOptimizer } from "../src/optimizer.js";
import { ParameterShard } from "../src/parameter-shard.js";
import { allFinite, allFiniteJs, checkFinite } from "../src/push-validation.js";

const memory = kernelMemory()!;

function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

const hex = (bits: number) => `0x${bits.toString(16).padStart(8, "0")}`;

/** Same bits, except that any NaN matches any NaN (see the file's comment). */
function expectSameFloats(actual: Float32Array, expected: Float32Array, what: string): void {
  expect(actual.length).toBe(expected.length);
  const a = bitsOf(actual);
  const e = bitsOf(expected);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === e[i] || (Number.isNaN(actual[i]) && Number.isNaN(expected[i]))) continue;
    expect.fail(`${what}: element ${i}: wasm gave ${hex(a[i]!)} (${actual[i]}), JavaScript ${hex(e[i]!)} (${expected[i]})`);
  }
}

/** Bit patterns every float kernel must get right: zeros, denormals, extremes, infinities, NaNs with payloads. */
const edgeBits = [
  0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007fffff, 0x807fffff, 0x00800000, 0x80800000, 0x7f7fffff, 0xff7fffff, 0x7f800000,
  0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0xffbfffff, 0x7fc12345, 0x3f800000, 0xbf800000, 0x4cbebc20 /* 1e8 */, 0xccbebc20,
  0x33d6bf95 /* 1e-7 */, 0x0c000000, 0x72000000,
];

/** `length` float32s in the kernel memory: edge values, then random values of every magnitude, then random bit patterns. */
function values(length: number, seed: number): Float32Array {
  const next = seededRandom(seed);
  const out = memory.float32(length);
  const bits = bitsOf(out);
  for (let i = 0; i < length; i++) {
    const pick = next() % 8;
    if (pick === 0) bits[i] = edgeBits[next() % edgeBits.length]!;
    else if (pick === 1) bits[i] = next();
    else bits[i] = ((next() & 0x807fffff) | (((next() % 60) + 97) << 23)) >>> 0; // |x| in 2^-30 .. 2^29
  }
  return out;
}

/** Only finite values (a pushed gradient that passed the check): the optimizers' and the average's everyday inputs. */
function finiteValues(length: number, seed: number, scale: number): Float32Array {
  const next = seededRandom(seed);
  const out = memory.float32(length);
  for (let i = 0; i < length; i++) out[i] = ((next() / 2 ** 32 - 0.5) * scale) / 2 ** (next() % 20);
  return out;
}

const lengths = [0, 1, 2, 3, 4, 5, 7, 8, 4 * 25 + 3, 1000];
const froms = [0, 1, 2, 3];

describe("averageInRankOrder kernel", () => {
  it("gives the JavaScript's bits for 1 to 5 ranks, odd lengths and unaligned ranges, edge values included", () => {
    let seed = 1;
    for (let n = 1; n <= 5; n++) {
      for (const length of lengths) {
        for (const from of froms) {
          const size = from + length + 2;
          const contributions = Array.from({ length: n }, () => values(size, seed++));
          const out = memory.float32(size);
          out.fill(-1);
          const ran = kernelCallsDuring("averageInRankOrder", () => averageInRankOrder(contributions, from, from + length, out));
          // One rank is a plain copy; from two on the kernel runs.
          expect(ran).toEqual(n === 1 ? { wasm: 0, js: 1 } : { wasm: 1, js: 0 });
          const expected = new Float32Array(size).fill(-1);
          averageInRankOrderJs(
            contributions.map((c) => c.slice()),
            from,
            from + length,
            expected,
          );
          expectSameFloats(out, expected, `n ${n}, [${from}, ${from + length})`);
          for (const view of [...contributions, out]) memory.free(view);
        }
      }
    }
  });

  it("is the rank-order sum, not another order, on values where the order shows", () => {
    const a = memory.float32(8);
    const b = memory.float32(8);
    const c = memory.float32(8);
    a.fill(1e8);
    b.fill(1);
    c.fill(-1e8);
    const out = memory.float32(8);
    averageInRankOrder([a, b, c], 0, 8, out);
    // (1e8 + 1) rounds to 1e8 in float32, so the sum is 0; in another order it would be 1.
    expect(Array.from(out)).toEqual(new Array(8).fill(0));
    averageInRankOrder([a, c, b], 0, 8, out);
    expect(Array.from(out)).toEqual(new Array(8).fill(Math.fround(1 / 3)));
    for (const view of [a, b, c, out]) memory.free(view);
  });

  it("may write over one of the contributions (the same range), as the JavaScript may", () => {
    const a = values(13, 77);
    const b = values(13, 78);
    const expected = new Float32Array(13);
    averageInRankOrderJs([a.slice(), b.slice()], 0, 13, expected);
    expect(kernelCallsDuring("averageInRankOrder", () => averageInRankOrder([a, b], 0, 13, a)).wasm).toBe(1);
    expectSameFloats(a, expected, "in place");
    memory.free(a);
    memory.free(b);
  });

  it("runs the JavaScript when an array is outside the kernel memory", () => {
    const a = values(9, 3);
    const out = memory.float32(9);
    expect(kernelCallsDuring("averageInRankOrder", () => averageInRankOrder([a, new Float32Array(9)], 0, 9, out))).toEqual({
      wasm: 0,
      js: 1,
    });
    expect(kernelCallsDuring("averageInRankOrder", () => averageInRankOrder([a, a], 0, 9, new Float32Array(9)))).toEqual({
      wasm: 0,
      js: 1,
    });
    memory.free(a);
    memory.free(out);
  });
});

describe("finite check kernel", () => {
  const bad = [0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0x7fbfffff, 0xffffffff];

  it("flags a NaN or an infinity at every position, in the vectors and in the tail, and nothing outside the range", () => {
    for (const length of [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 16, 19]) {
      for (const from of froms) {
        const array = finiteValues(from + length + 3, length * 10 + from, 1e30);
        // Finite extremes are finite.
        bitsOf(array)[from] = 0x7f7fffff;
        expect(kernelCallsDuring("checkFinite", () => expect(allFinite(array, from, from + length)).toBe(true))).toEqual({
          wasm: 1,
          js: 0,
        });
        for (let position = 0; position < length; position++) {
          for (const pattern of bad) {
            const bits = bitsOf(array);
            const saved = bits[from + position]!;
            bits[from + position] = pattern;
            expect(allFinite(array, from, from + length), `length ${length} from ${from} position ${position} ${hex(pattern)}`).toBe(false);
            expect(allFiniteJs(array, from, from + length)).toBe(false);
            bits[from + position] = saved;
          }
        }
        // Just outside the range on either side: not this range's problem.
        const bits = bitsOf(array);
        if (from > 0) bits[from - 1] = 0x7fc00000;
        bits[from + length] = 0x7f800000;
        expect(allFinite(array, from, from + length)).toBe(true);
        memory.free(array);
      }
    }
  });

  it("throws the same error as the JavaScript path, naming the first bad element", () => {
    const layout = {
      tensors: [{ name: "dense/kernel", offset: 0, size: 100, shape: [100] }],
      parameterCount: 100,
    } as unknown as Parameters<typeof checkFinite>[4];
    const header = { jobId: "j", generation: 1, step: 3, rank: 2 };
    const inMemory = finiteValues(40, 5, 1);
    inMemory[21] = -Infinity;
    inMemory[30] = NaN;
    const onHeap = inMemory.slice();
    const messageOf = (values: Float32Array) => {
      try {
        checkFinite(values, 1, 37, 1000, layout, header);
      } catch (error) {
        return (error as Error).message;
      }
      return "no error";
    };
    const wasmMessage = messageOf(inMemory);
    expect(wasmMessage).toMatch(/holds -Infinity at element 1020/);
    expect(wasmMessage).toBe(messageOf(onHeap));
    memory.free(inMemory);
  });
});

function sgdSpec(learningRate: number, momentum: number): OptimizerSpec {
  return create(OptimizerSpecSchema, { kind: { case: "sgd", value: { learningRate, momentum } } });
}

function adamSpec(learningRate: number, beta1: number, beta2: number, epsilon: number): OptimizerSpec {
  return create(OptimizerSpecSchema, { kind: { case: "adam", value: { learningRate, beta1, beta2, epsilon } } });
}

describe("optimizer kernels", () => {
  const specs: Array<[string, KernelName, OptimizerSpec]> = [
    ["sgd", "sgd", sgdSpec(0.1, 0)],
    ["sgd, float32 learning rate", "sgd", sgdSpec(Math.fround(0.01), 0)],
    ["sgd momentum 0.9", "sgdMomentum", sgdSpec(0.05, 0.9)],
    ["sgd momentum 0.5, float32 values", "sgdMomentum", sgdSpec(Math.fround(0.3), Math.fround(0.5))],
    ["adam", "adam", adamSpec(0.001, 0.9, 0.999, 1e-7)],
    ["adam, float32 hyperparameters", "adam", adamSpec(Math.fround(0.01), Math.fround(0.8), Math.fround(0.99), Math.fround(1e-8))],
  ];

  for (const [name, kernel, spec] of specs) {
    it(`${name}: the JavaScript's bits over updates t = 1..5, odd lengths, unaligned ranges and edge values`, () => {
      let seed = 1000;
      for (const length of lengths) {
        for (const from of froms) {
          for (const gradients of ["finite", "edge"] as const) {
            const size = from + length + 2;
            // Two optimizers with the same state; one applied to kernel memory (wasm), one to the heap (JavaScript).
            const wasmOptimizer = createOptimizer(spec, size);
            const jsOptimizer = createOptimizer(spec, size);
            const params = gradients === "edge" ? values(size, seed++) : finiteValues(size, seed++, 4);
            const heapParams = params.slice();
            for (let t = 1; t <= 5; t++) {
              const gradient = gradients === "edge" ? values(size, seed++) : finiteValues(size, seed++, 1);
              // In place here (out === params); the next test writes elsewhere.
              const chunk = gradient.subarray(from, from + length);
              const ran = kernelCallsDuring(kernel, () => wasmOptimizer.apply(params, chunk, params, from, from + length, t));
              expect(ran).toEqual({ wasm: 1, js: 0 });
              expect(
                kernelCallsDuring(kernel, () => jsOptimizer.apply(heapParams, chunk.slice(), heapParams, from, from + length, t)),
              ).toEqual({
                wasm: 0,
                js: 1,
              });
              wasmOptimizer.commit();
              jsOptimizer.commit();
              expectSameFloats(params, heapParams, `${name}: ${gradients} values, [${from}, ${from + length}), t = ${t}`);
              memory.free(gradient);
            }
            memory.free(params);
          }
        }
      }
    });
  }

  it("adam keeps the JavaScript's order of operations, on inputs where another order would round differently", () => {
    // Random inputs almost never show a reassociation (the doubles differ in the last bit,
    // rarely enough to move a float32 result), so inputs that do are searched for: one
    // Adam step from zero state and parameters whose result changes if v is computed as
    // (1 - beta2) * (g * g), or the step as lr * ((m / c1) / (sqrt(v / c2) + epsilon)).
    const f = Math.fround;
    const next = seededRandom(2024);
    const uniform = () => next() / 2 ** 32;
    const beta1 = 0.9;
    const epsilon = 1e-7;
    interface Case {
      learningRate: number;
      beta2: number;
      g: number;
      expected: number;
    }
    /** m / c1 and the denominator sqrt(v / c2) + epsilon of the JavaScript's first step. */
    const terms = (beta2: number, g: number, reassociateV: boolean) => {
      const m = f(beta1 * 0 + (1 - beta1) * g);
      const v = reassociateV ? f(beta2 * 0 + (1 - beta2) * (g * g)) : f(beta2 * 0 + (1 - beta2) * g * g);
      return { mOverC1: m / (1 - beta1 ** 1), denominator: Math.sqrt(v / (1 - beta2 ** 1)) + epsilon };
    };
    const step = ({ learningRate, beta2, g }: Omit<Case, "expected">, reassociate: "none" | "v" | "step") => {
      const { mOverC1, denominator } = terms(beta2, g, reassociate === "v");
      return f(reassociate === "step" ? 0 - learningRate * (mOverC1 / denominator) : 0 - (learningRate * mOverC1) / denominator);
    };
    const cases: Case[] = [];
    for (const reassociate of ["v", "step"] as const) {
      let found = 0;
      for (let trial = 0; trial < 1_000_000 && found < 6; trial++) {
        const g = f(1 + uniform());
        const target = f(0.0005 + uniform() * 0.001);
        const midpoint = target + 2 ** (Math.floor(Math.log2(target)) - 24);
        // Aim the rounded quantity at a float32 rounding midpoint: v, or the step itself.
        let candidate: Omit<Case, "expected">;
        if (reassociate === "v") candidate = { learningRate: 1, beta2: 1 - midpoint / (g * g), g };
        else {
          const { mOverC1, denominator } = terms(0.999, g, false);
          candidate = { learningRate: (midpoint * denominator) / mOverC1, beta2: 0.999, g };
        }
        const expected = step(candidate, "none");
        if (expected !== step(candidate, reassociate)) {
          cases.push({ ...candidate, expected });
          found++;
        }
      }
      expect(found, `inputs where reassociating ${reassociate} shows`).toBe(6);
    }
    for (const { learningRate, beta2, g, expected } of cases) {
      const spec = adamSpec(learningRate, beta1, beta2, epsilon);
      const params = memory.float32(4);
      const gradient = memory.float32(4);
      gradient.fill(g);
      const heapParams = new Float32Array(4);
      expect(kernelCallsDuring("adam", () => createOptimizer(spec, 4).apply(params, gradient, params, 0, 4, 1))).toEqual({
        wasm: 1,
        js: 0,
      });
      createOptimizer(spec, 4).apply(heapParams, gradient.slice(), heapParams, 0, 4, 1);
      expect(heapParams[0]).toBe(expected);
      expectSameFloats(params, heapParams, `learning rate ${learningRate}, beta2 ${beta2}, g ${g}`);
      memory.free(params);
      memory.free(gradient);
    }
  });

  it("updates a range in several calls as in one (the state is per element)", () => {
    const spec = adamSpec(0.01, 0.9, 0.999, 1e-7);
    const size = 103;
    const whole = createOptimizer(spec, size);
    const pieces = createOptimizer(spec, size);
    const a = finiteValues(size, 1, 2);
    const b = memory.float32(size);
    b.set(a);
    for (let t = 1; t <= 3; t++) {
      const gradient = finiteValues(size, 10 + t, 1);
      whole.apply(a, gradient, a, 0, size, t);
      whole.commit();
      for (const [from, to] of [
        [0, 5],
        [5, 50],
        [50, 51],
        [51, 103],
      ] as const)
        pieces.apply(b, gradient.subarray(from, to), b, from, to, t);
      pieces.commit();
      memory.free(gradient);
    }
    expectSameFloats(b, a, "pieces");
    memory.free(a);
    memory.free(b);
  });

  for (const [name, kernel, spec] of [
    ["sgd", "sgd", sgdSpec(0.1, 0)],
    ["sgd momentum 0.9", "sgdMomentum", sgdSpec(0.05, 0.9)],
    ["adam", "adam", adamSpec(0.01, 0.9, 0.999, 1e-7)],
  ] as Array<[string, KernelName, OptimizerSpec]>) {
    it(`${name}: writes the next version elsewhere and leaves the current one, and its state, until commit`, () => {
      const size = 103;
      const optimizer = createOptimizer(spec, size);
      const inPlace = createOptimizer(spec, size);
      const params = finiteValues(size, 5, 2);
      const reference = params.slice();
      const out = memory.float32(size);
      const gradient = finiteValues(size, 6, 1);
      // A step applied and dropped (never committed) leaves no trace: applied again, it gives the same bits.
      expect(kernelCallsDuring(kernel, () => optimizer.apply(params, gradient, out, 0, size, 1))).toEqual({ wasm: 1, js: 0 });
      const dropped = out.slice();
      out.fill(0);
      for (let t = 1; t <= 3; t++) {
        const before = params.slice();
        optimizer.apply(params, gradient, out, 0, size, t);
        if (t === 1) expectSameFloats(out, dropped, "the dropped step again");
        expectSameFloats(params, before, `params untouched, t = ${t}`);
        optimizer.commit();
        inPlace.apply(reference, gradient.slice(), reference, 0, size, t);
        inPlace.commit();
        expectSameFloats(out, reference, `${name}, t = ${t}`);
        params.set(out);
      }
      for (const view of [params, out, gradient]) memory.free(view);
    });
  }
});

describe("the shard's hot path", () => {
  const layout = parameterLayout(
    create(ModelSpecSchema, { kind: { case: "mlp", value: { hiddenUnits: [] } } }),
    dataShape({ name: "fashion-mnist", manifest: "" }),
  );

  for (const [name, kernel, spec] of [
    ["sgd with momentum", "sgdMomentum", sgdSpec(0.05, 0.9)],
    ["adam", "adam", adamSpec(0.01, 0.9, 0.999, 1e-7)],
  ] as Array<[string, KernelName, OptimizerSpec]>) {
    it(`runs the wasm kernels (${name}) and matches the JavaScript reference bit for bit`, () => {
      const size = 1003; // chunks of 64, the last one 43 long: a tail for every kernel
      const worldSize = 3;
      const shard = new ParameterShard();
      shard.configure({
        jobId: "j",
        generation: 1,
        worldSize,
        range: { begin: 0, end: size },
        chunkElements: 64,
        optimizer: spec,
        layout,
        seed: 7,
      });
      shard.openGeneration(1, 0);
      // The reference: the same arithmetic on ordinary arrays, which takes the JavaScript path.
      const reference = Float32Array.from(shard.parameters);
      const referenceOptimizer = createOptimizer(spec, size);
      const before = Object.fromEntries((["averageInRankOrder", "checkFinite", kernel] as const).map((k) => [k, { ...kernelCalls[k] }]));
      for (let step = 0; step < 3; step++) {
        const gradients = Array.from({ length: worldSize }, (_, rank) => Float32Array.from(finiteValues(size, 100 * step + rank, 0.1)));
        for (const rank of [2, 0, 1]) {
          const push = shard.beginPush();
          for (let offset = 0; offset < size; offset += 64) {
            const data = new Uint8Array(gradients[rank]!.slice(offset, Math.min(offset + 64, size)).buffer);
            push.add(create(PushRequestSchema, { jobId: "j", generation: 1, step, rank, offset: BigInt(offset), data }));
          }
          push.commit();
        }
        expect(shard.version).toBe(step + 1);
        const average = new Float32Array(size);
        averageInRankOrderJs(gradients, 0, size, average);
        referenceOptimizer.apply(reference, average, reference, 0, size, step + 1);
        referenceOptimizer.commit();
        expectSameFloats(shard.parameters, reference, `${name}, step ${step}`);
      }
      const chunks = Math.ceil(size / 64);
      expect(kernelCalls.averageInRankOrder.wasm - before.averageInRankOrder!.wasm).toBe(3 * chunks);
      expect(kernelCalls.averageInRankOrder.js - before.averageInRankOrder!.js).toBe(0);
      expect(kernelCalls.checkFinite.wasm - before.checkFinite!.wasm).toBe(3 * worldSize * chunks);
      expect(kernelCalls.checkFinite.js - before.checkFinite!.js).toBe(0);
      // The shard applies the optimizer chunk by chunk, as each chunk is complete.
      expect(kernelCalls[kernel].wasm - before[kernel]!.wasm).toBe(3 * chunks);
      // The reference optimizer's three updates are the only JavaScript ones.
      expect(kernelCalls[kernel].js - before[kernel]!.js).toBe(3);
      expect(memory.owns(shard.parameters)).toBe(true);
    });
  }
});
