/**
 * Valid encodings of any protobuf message with every field set, made from its descriptor
 * alone: the seeds that byte mutations start from, so that a fuzz test reaches every field
 * of every message of a service without a hand-written example of each. One encoding per
 * case of the message's oneofs (the first, second, ... case of each), plus the empty one.
 */
import type { DescEnum, DescField, DescMessage } from "@bufbuild/protobuf";
import { create, ScalarType, toBinary } from "@bufbuild/protobuf";

/** Nested messages deeper than this are left unset (job specs nest a few levels). */
const maxDepth = 4;

export function sampleMessages(schema: DescMessage): Uint8Array[] {
  const cases = Math.max(1, ...schema.oneofs.map((oneof) => oneof.fields.length));
  const samples = [new Uint8Array(0)];
  for (let choice = 0; choice < cases; choice++) {
    samples.push(toBinary(schema, create(schema, sampleInit(schema, choice, 0))));
  }
  return samples;
}

function sampleInit(schema: DescMessage, choice: number, depth: number): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  for (const oneof of schema.oneofs) {
    const field = oneof.fields[choice % oneof.fields.length]!;
    const value = singular(field, choice, depth);
    if (value !== undefined) init[oneof.localName] = { case: field.localName, value };
  }
  for (const field of schema.fields) {
    if (field.oneof !== undefined) continue;
    const value = field.fieldKind === "list" ? list(field, choice, depth) : singular(field, choice, depth);
    if (value !== undefined) init[field.localName] = value;
  }
  return init;
}

function singular(field: DescField, choice: number, depth: number): unknown {
  switch (field.fieldKind) {
    case "scalar":
      return scalar(field.scalar, field.longAsString);
    case "enum":
      return enumValue(field.enum);
    case "message":
      return depth >= maxDepth ? undefined : sampleInit(field.message, choice, depth + 1);
    default:
      return undefined;
  }
}

function list(field: DescField & { fieldKind: "list" }, choice: number, depth: number): unknown[] | undefined {
  switch (field.listKind) {
    case "scalar":
      return [scalar(field.scalar, field.longAsString), scalar(field.scalar, field.longAsString)];
    case "enum":
      return [enumValue(field.enum), enumValue(field.enum)];
    case "message":
      return depth >= maxDepth
        ? undefined
        : [sampleInit(field.message, choice, depth + 1), sampleInit(field.message, choice + 1, depth + 1)];
  }
}

/** The last value of the enum: not its zero, which the encoding would leave out. */
function enumValue(descriptor: DescEnum): number {
  return descriptor.values[descriptor.values.length - 1]!.number;
}

function scalar(type: ScalarType, longAsString: boolean): unknown {
  switch (type) {
    case ScalarType.STRING:
      return "sample";
    case ScalarType.BYTES:
      // Four float32 values: what most bytes fields of trainfleet carry.
      return new Uint8Array(new Float32Array([0.5, -1.25, 2, 3.5]).buffer);
    case ScalarType.BOOL:
      return true;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return 0.75;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return longAsString ? "3" : 3n;
    default:
      return 3;
  }
}
