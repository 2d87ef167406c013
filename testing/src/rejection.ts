import { TrainfleetError } from "@trainfleet/proto";
import { expect } from "vitest";

/** The TrainfleetError that `promise` rejects with; fails the test if it resolves or throws anything else. */
export async function rejection(promise: Promise<unknown>): Promise<TrainfleetError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TrainfleetError);
  return error as TrainfleetError;
}
