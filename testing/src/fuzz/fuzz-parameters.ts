/**
 * How every fuzz test runs: a fixed seed (a failure prints the seed and the path of the
 * shrunk counterexample, and `{ seed, path }` given to fc.assert replays it), a fixed
 * number of runs, and a time limit after which the property stops where it got to, so
 * that the suite stays bounded on a 2-core machine.
 */
import type { Arbitrary, Parameters as FastCheckParameters } from "fast-check";
import fc from "fast-check";

export interface FuzzBounds {
  numRuns: number;
  /** The property stops after this long (default 4 s). */
  timeLimitMs?: number;
  /** One async run longer than this fails the property: that is a hang (default 5 s). */
  runTimeoutMs?: number;
}

/** The seed of every fuzz test: the same inputs on every machine and every run. */
export const fuzzSeed = 0x7f_c0_00_01;

/** For fc.assert of a synchronous property: with no run done by the time limit it fails. */
export function fuzzParameters<T>(bounds: FuzzBounds): FastCheckParameters<T> {
  return { seed: fuzzSeed, numRuns: bounds.numRuns, plugins: [fc.interruptAfterTimeLimit(bounds.timeLimitMs ?? 4_000)] };
}

/**
 * fc.assert of an async property within `bounds`. Past the time limit the remaining runs
 * pass at once without calling `predicate`: fast-check's own time limit would abandon the
 * run in flight, which then goes on beside whatever the test does next (closing the server
 * that the run still uses, say).
 */
export async function fuzzAsync<Ts extends [unknown, ...unknown[]]>(
  bounds: FuzzBounds,
  ...args: [...arbitraries: { [K in keyof Ts]: Arbitrary<Ts[K]> }, predicate: (...values: Ts) => Promise<void>]
): Promise<void> {
  const predicate = args[args.length - 1] as (...values: Ts) => Promise<void>;
  const arbitraries = args.slice(0, -1) as unknown as { [K in keyof Ts]: Arbitrary<Ts[K]> };
  let deadline: number | undefined;
  const boxed = async (...values: Ts): Promise<void> => {
    deadline ??= Date.now() + (bounds.timeLimitMs ?? 4_000);
    if (Date.now() <= deadline) await predicate(...values);
  };
  const property = fc.asyncProperty<Ts>(...([...(arbitraries as unknown[]), boxed] as Parameters<typeof fc.asyncProperty<Ts>>));
  await fc.assert(property, { seed: fuzzSeed, numRuns: bounds.numRuns, plugins: [fc.timeout(bounds.runTimeoutMs ?? 5_000)] });
}
