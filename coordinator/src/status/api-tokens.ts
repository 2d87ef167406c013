/**
 * Who may read a job's status and who may control the job: bearer tokens, one for each
 * right. The read token opens the status API (GET /v1/jobs/..., /metrics) and gRPC
 * GetJob/WatchJob; the control token does too, and SubmitJob besides. Without any token
 * the coordinator is open (and says so on every start, run-coordinator.ts); with one,
 * every right needs a token that grants it, so a right whose token was not given is
 * granted to nobody.
 *
 * Tokens are compared in constant time: both sides are hashed (SHA-256) and the digests,
 * always of equal length, compared with crypto.timingSafeEqual; both tokens are always
 * compared, so the time taken tells neither how much of a guess was right nor which token
 * it resembled. A token is never logged, nor put in a status, an event or an error message.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { Code, invalidField, TrainfleetError } from "@trainfleet/proto";

export type ApiRight = "read" | "control";

export interface ApiTokenOptions {
  /** The token that grants read. */
  read?: string | undefined;
  /** The token that grants control (and read). */
  control?: string | undefined;
  /** Where each came from (a flag, a variable), for the errors about them. */
  sources?: Partial<Record<ApiRight, string>> | undefined;
}

/** What a request's credentials get it: nothing asked for, a wrong or malformed token, or a right. */
export type ApiAccess =
  | { kind: "open" }
  | { kind: "missing" }
  | { kind: "malformed"; why: string }
  | { kind: "wrong" }
  | { kind: "granted"; right: ApiRight };

/** RFC 6750's b64token: what a bearer token may hold, so that it fits an Authorization header as it is. */
const tokenPattern = /^[A-Za-z0-9\-._~+/]+=*$/;
/** Fewer characters than this is guessable; `trainfleet run` makes 43 (32 random bytes, base64url). */
export const minTokenLength = 16;

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest();

/** Checks a token given by `field` (a flag or variable name): an error names the field, never the token. */
export function checkToken(token: string, field: string): string {
  if (token.length < minTokenLength)
    throw invalidField(
      field,
      `the token has ${token.length} characters; give at least ${minTokenLength} (for example 32 random bytes in base64url)`,
    );
  if (!tokenPattern.test(token))
    throw invalidField(field, "the token may hold only letters, digits and - . _ ~ + / (then = padding), to fit an Authorization header");
  return token;
}

export class ApiTokens {
  readonly #read: Buffer | undefined;
  readonly #control: Buffer | undefined;

  constructor(options: ApiTokenOptions = {}) {
    if (options.read !== undefined) checkToken(options.read, options.sources?.read ?? "the read token");
    if (options.control !== undefined) checkToken(options.control, options.sources?.control ?? "the control token");
    if (options.read !== undefined && options.read === options.control)
      throw new TrainfleetError(Code.INVALID_ARGUMENT, "the read and the control token are the same: give each right a token of its own");
    this.#read = options.read === undefined ? undefined : digest(options.read);
    this.#control = options.control === undefined ? undefined : digest(options.control);
  }

  /** Whether any token was given: if not, everything is open. */
  get required(): boolean {
    return this.#read !== undefined || this.#control !== undefined;
  }

  /** Which tokens were given, for messages ("read", "control"). */
  get configured(): ApiRight[] {
    return [...(this.#read === undefined ? [] : (["read"] as const)), ...(this.#control === undefined ? [] : (["control"] as const))];
  }

  /** What an Authorization header value (or none) gets. */
  access(authorization: string | undefined): ApiAccess {
    if (!this.required) return { kind: "open" };
    if (authorization === undefined || authorization === "") return { kind: "missing" };
    const match = /^Bearer +(\S+) *$/i.exec(authorization);
    if (match === null) return { kind: "malformed", why: 'the Authorization header is not "Bearer TOKEN"' };
    const given = digest(match[1]!);
    // Both comparisons run whatever the first says: no early exit to time.
    const control = this.#control !== undefined && timingSafeEqual(given, this.#control);
    const read = this.#read !== undefined && timingSafeEqual(given, this.#read);
    if (control) return { kind: "granted", right: "control" };
    if (read) return { kind: "granted", right: "read" };
    return { kind: "wrong" };
  }
}

/** Whether `access` covers `right` (control covers read). */
export function grants(access: ApiAccess, right: ApiRight): boolean {
  if (access.kind === "open") return true;
  if (access.kind !== "granted") return false;
  return access.right === "control" || right === "read";
}

/** Why a request is refused (UNAUTHENTICATED: no valid token; PERMISSION_DENIED: a token without the right), or undefined when it may go on. */
export function refusal(
  tokens: ApiTokens,
  access: ApiAccess,
  right: ApiRight,
  /** What the request does, for the message ("read the job's status", "submit a job"). */
  what: string,
  /** How a token is sent on this channel: 'the header "Authorization: Bearer TOKEN"'. */
  how: string,
): TrainfleetError | undefined {
  if (grants(access, right)) return undefined;
  // Read is granted by the control token too: the only one, when no read token was given.
  const token = right === "read" && !tokens.configured.includes("read") ? "control" : right;
  const where = `the ${token} token (a \`trainfleet run\` job folder's tokens/${token}; \`trainfleet status\` takes --token-file or TRAINFLEET_TOKEN)`;
  switch (access.kind) {
    case "missing":
      return new TrainfleetError(Code.UNAUTHENTICATED, `a bearer token is needed to ${what}: send ${how} with ${where}`);
    case "malformed":
      return new TrainfleetError(Code.UNAUTHENTICATED, `${access.why}: to ${what}, send ${how} with ${where}`);
    case "wrong":
      return new TrainfleetError(
        Code.UNAUTHENTICATED,
        `the bearer token is not one of this coordinator's tokens: to ${what}, send ${how} with ${where}`,
      );
    default:
      return new TrainfleetError(
        Code.PERMISSION_DENIED,
        tokens.configured.includes(right)
          ? `the read token does not allow you to ${what}: send ${where} instead`
          : `nobody may ${what} here: this coordinator was started without a ${right} token (--${right}-token-file)`,
      );
  }
}
