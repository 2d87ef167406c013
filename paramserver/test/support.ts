/** Small helpers the shard tests share. */

import { TrainfleetError } from "@trainfleet/proto";
import { expect } from "vitest";

/** The bit patterns of float32 values, for exact comparisons (NaN and -0 included). */
export const bits = (values: Float32Array): number[] => Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length));

/** The TrainfleetError `run` throws; fails the test if it throws nothing or something else. */
export function errorOf(run: () => unknown): TrainfleetError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(TrainfleetError);
    return error as TrainfleetError;
  }
  throw new Error("expected an error");
}
