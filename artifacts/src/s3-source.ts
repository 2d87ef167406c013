/**
 * A file behind an s3://bucket/key URL, read with the AWS SDK (HeadObject for the size,
 * ranged GetObject for reads) from AWS or an S3-compatible server. The SDK's own retries are
 * off (maxAttempts 1) so that retry.ts is the one policy for every remote source; the SDK's
 * errors are translated here, in one place. One client per configuration is kept and shared.
 */
import { createHash } from "node:crypto";
import type { S3Client, S3ClientConfig } from "@aws-sdk/client-s3";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { checkAnswerRange, rangeHeader, reachesEnd } from "./byte-range.js";
import type { ByteSource } from "./byte-source-interface.js";
import { TransientFailure } from "./retry.js";
import { retryingSource } from "./retrying-source.js";
import type { ResolvedSourceOptions, S3Credentials } from "./source-options.js";

/** `s3://bucket/key` split; the key is kept byte for byte (S3 keys are not URL paths). */
export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/?#]+)\/(.+)$/i.exec(uri);
  if (match?.[1] === undefined || match[2] === undefined) {
    throw new TrainfleetError(Code.INVALID_ARGUMENT, `${uri}: not an S3 object URL; write it as s3://bucket/path/to/file`);
  }
  return { bucket: match[1], key: match[2] };
}

/** The S3 settings in force, from SourceOptions.s3 first, then the AWS_* environment. */
export interface S3Settings {
  readonly region: string;
  readonly endpoint: string | undefined;
  readonly forcePathStyle: boolean;
  readonly credentials: S3Credentials | undefined;
  /** Which setting the credentials came from, for an access-denied message. */
  readonly credentialsFrom: string;
}

export function s3Settings(options: ResolvedSourceOptions): S3Settings {
  const { s3, env } = options;
  const set = (name: string): string | undefined => (env[name] === undefined || env[name] === "" ? undefined : env[name]);
  const endpoint = s3.endpoint ?? set("AWS_ENDPOINT_URL_S3") ?? set("AWS_ENDPOINT_URL");
  if (endpoint !== undefined && !URL.canParse(endpoint)) {
    throw new TrainfleetError(Code.INVALID_ARGUMENT, `S3 endpoint "${endpoint}" is not a URL; write it as http(s)://host:port`, {
      field: "s3.endpoint",
    });
  }
  const accessKeyId = set("AWS_ACCESS_KEY_ID");
  const secretAccessKey = set("AWS_SECRET_ACCESS_KEY");
  const sessionToken = set("AWS_SESSION_TOKEN");
  let credentials: S3Credentials | undefined;
  let credentialsFrom: string;
  if (s3.credentials !== undefined) {
    credentials = s3.credentials;
    credentialsFrom = "the S3 credentials given to this reader (SourceOptions.s3.credentials, e.g. from the job's credentials Secret)";
  } else if (accessKeyId !== undefined && secretAccessKey !== undefined) {
    credentials = sessionToken === undefined ? { accessKeyId, secretAccessKey } : { accessKeyId, secretAccessKey, sessionToken };
    credentialsFrom = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys)";
  } else {
    credentials = undefined;
    credentialsFrom =
      "the AWS SDK's default credentials (AWS_PROFILE / ~/.aws, web identity, instance role), since AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set";
  }
  return {
    region: s3.region ?? set("AWS_REGION") ?? set("AWS_DEFAULT_REGION") ?? "us-east-1",
    endpoint,
    forcePathStyle: s3.forcePathStyle ?? endpoint !== undefined,
    credentials,
    credentialsFrom,
  };
}

type S3Sdk = typeof import("@aws-sdk/client-s3");
let sdk: Promise<S3Sdk> | undefined;

/** The AWS SDK, loaded at the first S3 read: a job on local or HTTP files never needs it, and it took each process 0.2 s to load. */
function s3Sdk(): Promise<S3Sdk> {
  sdk ??= import("@aws-sdk/client-s3");
  return sdk;
}

const clients = new Map<string, S3Client>();

/** The shared client for `settings`; keyed by a hash so no secret is kept as a map key. */
function clientFor(settings: S3Settings, { S3Client }: S3Sdk): S3Client {
  const { region, endpoint, forcePathStyle, credentials } = settings;
  const key = createHash("sha256")
    .update(
      JSON.stringify([region, endpoint, forcePathStyle, credentials?.accessKeyId, credentials?.secretAccessKey, credentials?.sessionToken]),
    )
    .digest("hex");
  let client = clients.get(key);
  if (client === undefined) {
    const config: S3ClientConfig = { region, forcePathStyle, maxAttempts: 1 };
    if (endpoint !== undefined) config.endpoint = endpoint;
    if (credentials !== undefined) config.credentials = credentials;
    client = new S3Client(config);
    clients.set(key, client);
  }
  return client;
}

export function createS3Source(uri: string, options: ResolvedSourceOptions): ByteSource {
  const { bucket, key } = parseS3Uri(uri);
  const settings = s3Settings(options);
  // The SDK and this source's client, found once and kept for every read.
  let connection: Promise<S3Sdk & { client: S3Client }> | undefined;
  const connect = () => {
    connection ??= s3Sdk().then((loaded) => ({ ...loaded, client: clientFor(settings, loaded) }));
    return connection;
  };
  const { policy } = options;
  const where = settings.endpoint === undefined ? `S3 (region ${settings.region})` : `the S3 endpoint ${settings.endpoint}`;
  const fix = `check that ${where} is reachable from here (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_REGION, proxy, firewall)`;
  const fail = (error: unknown, signal: AbortSignal) => s3Failure(uri, bucket, settings, error, signal);

  const rangeOnce = async (start: number, length: number, signal: AbortSignal) => {
    try {
      const { client, GetObjectCommand } = await connect();
      const reply = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: rangeHeader(start, length) }), {
        abortSignal: signal,
      });
      const range = checkAnswerRange(uri, reply.ContentRange, start, length);
      const bytes = (await reply.Body?.transformToByteArray()) ?? new Uint8Array(0);
      const expected = range.end - range.start + 1;
      if (bytes.length !== expected)
        throw new TransientFailure(`the reply had ${bytes.length} bytes where its Content-Range promised ${expected}`);
      return { bytes, atEnd: reachesEnd(range) };
    } catch (error) {
      // A range that starts at or past the end: no bytes, as a local file read there gives.
      if (errorName(error) === "InvalidRange" || httpStatus(error) === 416) return { bytes: new Uint8Array(0), atEnd: true };
      throw fail(error, signal);
    }
  };

  const sizeOnce = async (signal: AbortSignal): Promise<number> => {
    try {
      const { client, HeadObjectCommand } = await connect();
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
      if (head.ContentLength === undefined)
        throw new TrainfleetError(Code.FAILED_PRECONDITION, `${uri}: the server did not say how large the object is`);
      return head.ContentLength;
    } catch (error) {
      throw fail(error, signal);
    }
  };

  const readAllOnce = async (signal: AbortSignal): Promise<Uint8Array> => {
    try {
      const { client, GetObjectCommand } = await connect();
      const reply = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
      const bytes = (await reply.Body?.transformToByteArray()) ?? new Uint8Array(0);
      if (reply.ContentLength !== undefined && bytes.length !== reply.ContentLength) {
        throw new TransientFailure(`the reply was cut short: ${bytes.length} of ${reply.ContentLength} bytes`);
      }
      return bytes;
    } catch (error) {
      throw fail(error, signal);
    }
  };

  return retryingSource(uri, policy, fix, { sizeOnce, rangeOnce, readAllOnce });
}

/** S3 error names worth another try, besides any 5xx, 408 or 429. */
const TRANSIENT_NAMES = new Set([
  "SlowDown",
  "InternalError",
  "ServiceUnavailable",
  "RequestTimeout",
  "RequestTimeoutException",
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestThrottled",
  "RequestThrottledException",
  "TooManyRequestsException",
  "TimeoutError",
]);
const DENIED_NAMES = new Set([
  "AccessDenied",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "InvalidToken",
  "CredentialsProviderError",
]);

/** The one translation of what the SDK throws: a TrainfleetError (final) or a TransientFailure (retried). */
export function s3Failure(uri: string, bucket: string, settings: S3Settings, error: unknown, signal?: AbortSignal): Error {
  if (error instanceof TrainfleetError || error instanceof TransientFailure) return error;
  if (signal?.aborted) return error instanceof Error ? error : new Error(String(error));
  const name = errorName(error);
  const status = httpStatus(error);
  const message = error instanceof Error ? error.message : String(error);
  const what = status === undefined ? name : `${name}, HTTP ${status}`;
  if (name === "NoSuchBucket") {
    return new TrainfleetError(
      Code.NOT_FOUND,
      `${uri}: no such bucket "${bucket}". Fix: check the bucket name, and the endpoint and region it lives in`,
      {
        cause: error,
      },
    );
  }
  if (name === "NoSuchKey" || name === "NotFound" || status === 404)
    return new TrainfleetError(Code.NOT_FOUND, `${uri}: no such file`, { cause: error });
  if (DENIED_NAMES.has(name) || status === 401 || status === 403) {
    return new TrainfleetError(Code.PERMISSION_DENIED, `${uri}: access denied (${what}). Fix: check ${settings.credentialsFrom}`, {
      cause: error,
    });
  }
  if (name === "PermanentRedirect" || name === "AuthorizationHeaderMalformed" || status === 301) {
    return new TrainfleetError(
      Code.FAILED_PRECONDITION,
      `${uri}: bucket "${bucket}" is not in region ${settings.region} (${what}). Fix: set AWS_REGION to the bucket's region`,
      { cause: error },
    );
  }
  const retryable = (error as { $retryable?: unknown }).$retryable !== undefined;
  // No HTTP status means no reply at all: refused, reset, DNS, a dropped connection.
  if (status === undefined || status >= 500 || status === 408 || status === 429 || TRANSIENT_NAMES.has(name) || retryable) {
    return new TransientFailure(status === undefined ? describeNetwork(error) : `${what}: ${message}`);
  }
  return new TrainfleetError(Code.FAILED_PRECONDITION, `${uri}: S3 answered ${what}: ${message}`, { cause: error });
}

function errorName(error: unknown): string {
  return error instanceof Error ? ((error as { Code?: string }).Code ?? error.name) : "Error";
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function describeNetwork(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  if (error.message !== "") return error.message;
  if (error instanceof AggregateError && error.errors[0] instanceof Error) return error.errors[0].message || code || error.name;
  return code ?? error.name;
}
