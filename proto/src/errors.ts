/**
 * The one error type of trainfleet. It carries a gRPC status code so that it can cross
 * process boundaries unchanged: servers translate it to a grpc-js status, clients
 * translate grpc-js errors back into it (see grpc-errors.ts). Callers branch on `code`,
 * never on message text.
 */

/** gRPC status codes, by name (values are the wire numbers). */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type Code = (typeof Code)[keyof typeof Code];

const codeNames = new Map<number, string>(Object.entries(Code).map(([name, value]) => [value, name]));

export function codeName(code: number): string {
  return codeNames.get(code) ?? `CODE_${code}`;
}

export class TrainfleetError extends Error {
  override readonly name = "TrainfleetError";
  readonly code: Code;
  /** The input field the error is about, in dotted form (`spec.training.batchSize`), when there is one. */
  readonly field: string | undefined;

  constructor(code: Code, message: string, options: { field?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options.field;
  }

  /** Normalises anything caught into a TrainfleetError, keeping the original as `cause`. */
  static from(reason: unknown, fallback: Code = Code.UNKNOWN): TrainfleetError {
    if (reason instanceof TrainfleetError) return reason;
    if (reason instanceof Error) {
      if (reason.name === "AbortError") return new TrainfleetError(Code.CANCELLED, reason.message, { cause: reason });
      return new TrainfleetError(fallback, reason.message, { cause: reason });
    }
    return new TrainfleetError(fallback, String(reason), { cause: reason });
  }
}

/** An INVALID_ARGUMENT error about one field: the message says what was wrong and how to fix it. */
export function invalidField(field: string, problem: string): TrainfleetError {
  return new TrainfleetError(Code.INVALID_ARGUMENT, `${field}: ${problem}`, { field });
}
