/**
 * The one place where grpc-js errors and TrainfleetError meet. Servers send the code, the
 * message and the field (as trailing metadata); clients rebuild the same TrainfleetError.
 */
import * as grpc from "@grpc/grpc-js";
import { Code, TrainfleetError } from "./errors.js";

const fieldKey = "trainfleet-field";

export function toGrpcStatus(reason: unknown): Partial<grpc.StatusObject> {
  const error = TrainfleetError.from(reason, Code.INTERNAL);
  const metadata = new grpc.Metadata();
  if (error.field !== undefined) metadata.set(fieldKey, error.field);
  return { code: error.code as number as grpc.status, details: error.message, metadata };
}

export function fromGrpcError(reason: unknown): TrainfleetError {
  if (reason instanceof TrainfleetError) return reason;
  if (isServiceError(reason)) {
    const field = reason.metadata?.get(fieldKey)[0];
    return new TrainfleetError(reason.code as number as Code, reason.details || reason.message, {
      ...(typeof field === "string" ? { field } : {}),
      cause: reason,
    });
  }
  return TrainfleetError.from(reason);
}

function isServiceError(reason: unknown): reason is grpc.ServiceError {
  return reason instanceof Error && typeof (reason as Partial<grpc.ServiceError>).code === "number" && "details" in reason;
}
