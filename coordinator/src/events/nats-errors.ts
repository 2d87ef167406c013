/** The one place where errors of nats.js (core and JetStream) become TrainfleetErrors. */

import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import { errors } from "@nats-io/transport-node";
import { Code, TrainfleetError } from "@trainfleet/proto";

/** Is this JetStream's "stream not found"? */
export function isStreamNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;
}

export function fromNatsError(error: unknown, what: string): TrainfleetError {
  if (error instanceof TrainfleetError) return error;
  const message = error instanceof Error ? error.message : String(error);
  let code: Code = Code.UNKNOWN;
  if (error instanceof errors.ConnectionError || error instanceof errors.ClosedConnectionError) code = Code.UNAVAILABLE;
  else if (error instanceof errors.TimeoutError) code = Code.DEADLINE_EXCEEDED;
  else if (isStreamNotFound(error)) code = Code.NOT_FOUND;
  else if (error instanceof JetStreamApiError) code = Code.FAILED_PRECONDITION;
  return new TrainfleetError(code, `${what}: ${message}`, { cause: error });
}
