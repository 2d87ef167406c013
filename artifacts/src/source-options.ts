/**
 * How remote sources behave (retries, timeouts, S3 configuration), given by the caller and
 * resolved once, with defaults, into the form every source trusts. The environment is read
 * through `env` (default `process.env`) so that a caller or a test can pass its own.
 */
import { invalidField } from "@trainfleet/proto";
import { defaultRetryPolicy, type RetryPolicy } from "./retry.js";

export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface S3SourceOptions {
  /** An S3-compatible server (MinIO, Ceph, s3rver); default AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then AWS itself. */
  endpoint?: string;
  /** Default AWS_REGION, then AWS_DEFAULT_REGION, then "us-east-1". */
  region?: string;
  /** Default AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, then the AWS SDK's default chain. */
  credentials?: S3Credentials;
  /** `host/bucket/key` addressing instead of `bucket.host/key`; default true when an endpoint is set. */
  forcePathStyle?: boolean;
}

export interface SourceOptions {
  /** How many times a failed remote read is tried again before it fails (default 3: 4 tries in all). */
  retries?: number;
  /** The wait before the first retry, doubled for each later one (default 100 ms). */
  retryDelayMs?: number;
  /** The longest wait between tries (default 2000 ms). */
  maxRetryDelayMs?: number;
  /** Each remote request must finish within this (default 30 000 ms), or it is tried again. */
  timeoutMs?: number;
  /**
   * A server that ignores Range and sends the whole file is used (the range is cut from it)
   * only for files up to this size (default 64 MiB); a larger one is an error, not a slow crawl.
   */
  maxWholeBodyBytes?: number;
  /** Extra request headers for http(s) sources, e.g. `authorization`; never shown in messages. */
  httpHeaders?: Readonly<Record<string, string>>;
  s3?: S3SourceOptions;
  /** Where AWS_* settings are read from; default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

export interface ResolvedSourceOptions {
  readonly policy: RetryPolicy;
  readonly maxWholeBodyBytes: number;
  readonly httpHeaders: Readonly<Record<string, string>>;
  readonly s3: S3SourceOptions;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export function resolveSourceOptions(options: SourceOptions): ResolvedSourceOptions {
  const count = (field: keyof SourceOptions, value: number | undefined, fallback: number, minimum: number): number => {
    if (value === undefined) return fallback;
    if (!Number.isSafeInteger(value) || value < minimum) throw invalidField(field, `${value} must be an integer >= ${minimum}`);
    return value;
  };
  const retries = count("retries", options.retries, defaultRetryPolicy.attempts - 1, 0);
  return {
    policy: {
      attempts: retries + 1,
      initialDelayMs: count("retryDelayMs", options.retryDelayMs, defaultRetryPolicy.initialDelayMs, 0),
      maxDelayMs: count("maxRetryDelayMs", options.maxRetryDelayMs, defaultRetryPolicy.maxDelayMs, 0),
      timeoutMs: count("timeoutMs", options.timeoutMs, defaultRetryPolicy.timeoutMs, 1),
    },
    maxWholeBodyBytes: count("maxWholeBodyBytes", options.maxWholeBodyBytes, 64 * 1024 * 1024, 0),
    httpHeaders: options.httpHeaders ?? {},
    s3: options.s3 ?? {},
    env: options.env ?? process.env,
  };
}
