/**
 * Fuzz of every protobuf decode path of the contract: the grpc-js deserializer of every
 * request and response of the three services (what a server runs on a call's body before
 * any handler sees it), the two bus messages, and the status API's JSON reader. Damaged
 * valid encodings and random bytes either decode or throw an Error (which grpc-js turns
 * into a status), never hang; and what decodes encodes again, stably, so that a handler
 * never holds a message that the serializer cannot send back.
 */
import type { DescMessage, JsonValue } from "@bufbuild/protobuf";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { fuzzBytes } from "@trainfleet/testing/fuzz/byte-mutations";
import { fuzzParameters } from "@trainfleet/testing/fuzz/fuzz-parameters";
import { sampleMessages } from "@trainfleet/testing/fuzz/sample-messages";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CoordinatorService, JobService } from "../src/gen/trainfleet/v1/coordinator_pb.js";
import { JobEventSchema, StepMetricsSchema } from "../src/gen/trainfleet/v1/events_pb.js";
import { JobStatusSchema, JobWorkersSchema } from "../src/gen/trainfleet/v1/job_pb.js";
import { ParameterServerService } from "../src/gen/trainfleet/v1/paramserver_pb.js";
import { grpcServiceDefinition } from "../src/grpc-service.js";
import { jobStatusFromJson, jobStatusToJson, jobWorkersFromJson, jobWorkersToJson } from "../src/status-api/status-json.js";

const services = [CoordinatorService, JobService, ParameterServerService];
const bounds = { numRuns: 300, timeLimitMs: 1_500 };

/** What a call's body goes through on a server (request) or a client (response). */
const wireDecoders = services.flatMap((service) => {
  const definition = grpcServiceDefinition(service);
  return service.methods.flatMap((method) => {
    const { requestDeserialize, requestSerialize, responseDeserialize, responseSerialize } = definition[method.localName]!;
    return [
      { name: `${method.parent.name}.${method.name} request`, schema: method.input, decode: requestDeserialize, encode: requestSerialize },
      {
        name: `${method.parent.name}.${method.name} response`,
        schema: method.output,
        decode: responseDeserialize,
        encode: responseSerialize,
      },
    ];
  });
});

/** Decodes `bytes`; returns the message, or checks that what was thrown is an Error and returns undefined. */
function decodeOrError<T>(decode: () => T): T | undefined {
  try {
    return decode();
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return undefined;
  }
}

describe("the gRPC deserializer of every request and response", () => {
  it.each(wireDecoders)(
    "$name: damaged and random bodies decode or throw an Error, and what decodes encodes again stably",
    ({ schema, decode, encode }) => {
      fc.assert(
        fc.property(fuzzBytes(sampleMessages(schema)), (body) => {
          const message = decodeOrError(() => decode(Buffer.from(body)));
          if (message === undefined) return;
          const encoded = encode(message);
          expect(new Uint8Array(encode(decode(encoded)))).toEqual(new Uint8Array(encoded));
        }),
        fuzzParameters(bounds),
      );
    },
  );
});

describe("the bus messages", () => {
  it.each([JobEventSchema, StepMetricsSchema] as DescMessage[])(
    "$typeName: damaged and random bytes decode or throw an Error",
    (schema) => {
      fc.assert(
        fc.property(fuzzBytes(sampleMessages(schema)), (bytes) => {
          const message = decodeOrError(() => fromBinary(schema, bytes));
          if (message === undefined) return;
          const encoded = toBinary(schema, message);
          expect(toBinary(schema, fromBinary(schema, encoded))).toEqual(encoded);
        }),
        fuzzParameters(bounds),
      );
    },
  );
});

describe("the status API's JSON reader", () => {
  const readers = [
    { name: "JobStatus", read: jobStatusFromJson, write: jobStatusToJson, schema: JobStatusSchema },
    { name: "JobWorkers", read: jobWorkersFromJson, write: jobWorkersToJson, schema: JobWorkersSchema },
  ] as const;

  it.each(readers)("$name: random JSON and damaged real status JSON read or throw an Error", ({ read, write, schema }) => {
    // A full status as the coordinator writes it, damaged as text where the damage still parses as JSON.
    const full = sampleMessages(schema).map((bytes) => JSON.stringify(write(fromBinary(schema, bytes) as never)));
    const damaged = fuzzBytes(full.map((text) => new TextEncoder().encode(text))).map((bytes) => {
      try {
        return JSON.parse(new TextDecoder().decode(bytes)) as JsonValue;
      } catch {
        return null;
      }
    });
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), damaged), (json) => {
        const message = decodeOrError(() => read(json as JsonValue));
        if (message === undefined) return;
        // What was read is a message the writer can write back.
        expect(() => write(message as never)).not.toThrow();
      }),
      fuzzParameters(bounds),
    );
  });
});
