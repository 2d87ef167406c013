/**
 * Protobuf messages for fuzzing a server: a valid message with one to three fields set to
 * values that handlers get wrong (empty, huge, negative, NaN, an unknown enum number, an
 * id of another member), cleared, or with a list element repeated; the result is encoded,
 * so it reaches the handler, past the decoder that refuses most damaged bytes. A recipe
 * chooses the seed, the field (by walking into nested messages) and the value by number,
 * so it applies to seeds known only when a run starts (ids a server handed out).
 */
import type { DescField, DescMessage, Message } from "@bufbuild/protobuf";
import { clone, create, fromBinary, ScalarType, toBinary } from "@bufbuild/protobuf";
import type { Arbitrary } from "fast-check";
import fc from "fast-check";

export interface MessageRecipe {
  seed: number;
  edits: { path: number[]; value: number; clear: boolean }[];
}

export const messageRecipe: Arbitrary<MessageRecipe> = fc.record({
  seed: fc.nat(),
  edits: fc.array(
    // Cleared one time in five.
    fc.record({ path: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), value: fc.nat(), clear: fc.nat({ max: 4 }).map((n) => n === 0) }),
    { minLength: 1, maxLength: 3 },
  ),
});

/** `seeds` (encodings of `schema`) with the recipe's edits; `strings` are values a string field may take besides the odd ones. */
export function messageFrom(
  recipe: MessageRecipe,
  schema: DescMessage,
  seeds: readonly Uint8Array[],
  strings: readonly string[] = [],
): Uint8Array {
  const seed = seeds[recipe.seed % Math.max(1, seeds.length)];
  const message = clone(schema, seed === undefined ? create(schema) : fromBinary(schema, seed)) as Message & Record<string, unknown>;
  for (const edit of recipe.edits) applyEdit(schema, message, edit, strings);
  return toBinary(schema, message);
}

function applyEdit(
  schema: DescMessage,
  message: Record<string, unknown>,
  edit: MessageRecipe["edits"][number],
  strings: readonly string[],
): void {
  const [choice, ...rest] = edit.path;
  if (choice === undefined || schema.fields.length === 0) return;
  const field = schema.fields[choice % schema.fields.length]!;
  const holder = field.oneof === undefined ? message : undefined;
  const current = field.oneof === undefined ? message[field.localName] : oneofValue(message, field);
  if (field.fieldKind === "message" && rest.length > 0 && current !== undefined && !edit.clear) {
    return applyEdit(field.message, current as Record<string, unknown>, { ...edit, path: rest }, strings);
  }
  const value = edit.clear ? undefined : newValue(field, current, edit.value, strings);
  if (holder !== undefined) holder[field.localName] = value ?? defaultOf(field);
  else message[field.oneof!.localName] = value === undefined ? { case: undefined } : { case: field.localName, value };
}

function oneofValue(message: Record<string, unknown>, field: DescField): unknown {
  const oneof = message[field.oneof!.localName] as { case?: string; value?: unknown } | undefined;
  return oneof?.case === field.localName ? oneof.value : undefined;
}

function defaultOf(field: DescField): unknown {
  if (field.fieldKind === "list") return [];
  if (field.fieldKind === "message") return undefined;
  if (field.fieldKind === "enum") return 0;
  if (field.fieldKind === "scalar")
    return field.scalar === ScalarType.BYTES ? new Uint8Array(0) : scalarValues(field.scalar, field.longAsString, [])[0];
  return undefined;
}

function newValue(field: DescField, current: unknown, choice: number, strings: readonly string[]): unknown {
  switch (field.fieldKind) {
    case "scalar":
      return pick(scalarValues(field.scalar, field.longAsString, strings), choice);
    case "enum":
      return pick([0, 1, 2, 3, 99, 0x7fffffff, -1], choice);
    case "message":
      return create(field.message);
    case "list": {
      const list = (current as unknown[] | undefined) ?? [];
      // The list repeated, emptied, or its first element repeated many times.
      return pick([[...list, ...list], [], list.length === 0 ? [] : Array.from({ length: 64 }, () => list[0])], choice);
    }
    default:
      return current;
  }
}

function pick<T>(values: readonly T[], choice: number): T {
  return values[choice % values.length]!;
}

/** Values of a scalar type that handlers get wrong, valid for its encoding. */
function scalarValues(type: ScalarType, longAsString: boolean, strings: readonly string[]): unknown[] {
  const long = (values: bigint[]) => (longAsString ? values.map(String) : values);
  switch (type) {
    case ScalarType.STRING:
      return ["", ...strings, " ", "a".repeat(4096), "\u0000", "é\u{1F600}", "../x", "-1", "NaN"];
    case ScalarType.BYTES:
      return [new Uint8Array(0), Uint8Array.of(1, 2, 3), new Uint8Array(new Float32Array([Number.NaN, 1]).buffer), new Uint8Array(4096)];
    case ScalarType.BOOL:
      return [false, true];
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return [0, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -1, 1e30, 1e308, 5e-324, 0.5];
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return [0, 1, -1, 2, 0x7fffffff, -0x80000000];
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return [0, 1, 2, 7, 0x7fffffff, 0xffffffff];
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return long([0n, 1n, -1n, 2n ** 53n, 2n ** 63n - 1n, -(2n ** 63n)]);
    default:
      return long([0n, 1n, 2n ** 53n + 1n, 2n ** 64n - 1n]);
  }
}
