/**
 * The reason a worker reports when it gives up: given where the failure is recognised and
 * carried by the error itself (a WorkerFailure keeps the code, field and message of the
 * error it wraps, and that error as its cause); anything unrecognised is a WorkerError.
 */

import { Code, TrainfleetError } from "@trainfleet/proto";
import { describe, expect, it } from "vitest";
import { failureReason, WorkerFailure, workerFailure } from "../src/worker-failure.js";

describe("workerFailure", () => {
  it("wraps an error with its reason, keeping its code, field, message and the error as cause", () => {
    const refused = new TrainfleetError(Code.INVALID_ARGUMENT, "data: the gradient of rank 0 for step 3 holds NaN", { field: "data" });
    const failure = workerFailure("NonFiniteGradient", refused);
    expect(failure).toBeInstanceOf(TrainfleetError);
    expect([failure.reason, failure.code, failure.field, failure.message, failure.cause]).toEqual([
      "NonFiniteGradient",
      Code.INVALID_ARGUMENT,
      "data",
      refused.message,
      refused,
    ]);
    // TrainfleetError.from keeps it as it is, so the CLI prints the original message and code.
    expect(TrainfleetError.from(failure)).toBe(failure);
  });

  it("keeps the first reason given, and calls anything unrecognised a WorkerError", () => {
    const first = workerFailure("ModelError", new Error("no such layer"));
    expect(workerFailure("DataUnavailable", first)).toBe(first);
    expect([first.code, first.message]).toEqual([Code.UNKNOWN, "no such layer"]);
    expect(failureReason(first)).toBe("ModelError");
    expect(failureReason(new TrainfleetError(Code.DATA_LOSS, "corrupt"))).toBe("WorkerError");
    expect(failureReason("a string")).toBe("WorkerError");
    expect(new WorkerFailure("DataUnavailable", new TrainfleetError(Code.FAILED_PRECONDITION, "not found")).field).toBeUndefined();
  });
});
