import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkAnswerRange, parseContentRange } from "../src/byte-range.js";
import { openSource, resolveRelative } from "../src/byte-source.js";
import { backoffDelayMs, defaultRetryPolicy } from "../src/retry.js";
import { redactUri } from "../src/safe-uri.js";
import { resolveSourceOptions } from "../src/source-options.js";

const data = Uint8Array.from({ length: 300 }, (_, i) => i % 256);
let root: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "trainfleet-byte-source-"));
  writeFileSync(join(root, "data.bin"), data);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function thrown(run: () => unknown): TrainfleetError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(TrainfleetError);
    return error as TrainfleetError;
  }
  throw new Error("expected an error");
}

describe("local byte source", () => {
  it("reads size, ranges and the whole file, by path or file:// URL", async () => {
    const path = join(root, "data.bin");
    for (const source of [openSource(path), openSource(pathToFileURL(path).toString())]) {
      expect(source.uri).toBe(path);
      expect(await source.size()).toBe(300);
      expect(await source.read(10, 5)).toEqual(data.slice(10, 15));
      expect(await source.read(290, 50)).toEqual(data.slice(290));
      expect(await source.readAll()).toEqual(data);
    }
  });

  it("a missing file is NOT_FOUND naming the path", async () => {
    const path = join(root, "missing.bin");
    await expect(openSource(path).size()).rejects.toMatchObject({ code: Code.NOT_FOUND, message: `${path}: no such file` });
  });
});

describe("openSource", () => {
  it("refuses other schemes without showing credentials", () => {
    const error = thrown(() => openSource("ftp://bob:hunter22@example.com/x.bin"));
    expect(error.code).toBe(Code.INVALID_ARGUMENT);
    expect(error.message).toBe('ftp://example.com/x.bin: unsupported scheme "ftp://"; give a local path, an http(s):// or an s3:// URL');
  });

  it("refuses an s3:// URL without a key, and options out of range, naming the field", () => {
    expect(thrown(() => openSource("s3://bucket-only")).code).toBe(Code.INVALID_ARGUMENT);
    const error = thrown(() => openSource("https://example.com/x.bin", { retries: -1 }));
    expect([error.code, error.field]).toEqual([Code.INVALID_ARGUMENT, "retries"]);
  });
});

describe("resolveRelative", () => {
  it("resolves next to a local file, an http URL (keeping its credentials) and an s3 key", () => {
    expect(resolveRelative("/data/job/model.json", "w.bin")).toBe("/data/job/w.bin");
    expect(resolveRelative("/data/job/model.json", "/elsewhere/w.bin")).toBe("/elsewhere/w.bin");
    expect(resolveRelative("https://u:p@host/models/a/model.json", "shards/w.bin")).toBe("https://u:p@host/models/a/shards/w.bin");
    expect(resolveRelative("https://host/models/a/model.json?X-Amz-Signature=1", "../b/w.bin")).toBe("https://host/models/b/w.bin");
    expect(resolveRelative("s3://b/dir/model.json", "w.bin")).toBe("s3://b/dir/w.bin");
    expect(resolveRelative("s3://b/dir/sub/dataset.json", "../shards/part 0.arrow")).toBe("s3://b/dir/shards/part 0.arrow");
    expect(resolveRelative("s3://b/model.json", "w.bin")).toBe("s3://b/w.bin");
    expect(resolveRelative("s3://b/dir/model.json", "/top.bin")).toBe("s3://b/top.bin");
    expect(resolveRelative("s3://b/dir/model.json", "https://cdn/w.bin")).toBe("https://cdn/w.bin");
  });

  it("refuses a relative path that climbs out of the bucket", () => {
    expect(thrown(() => resolveRelative("s3://b/dir/model.json", "../../w.bin")).code).toBe(Code.INVALID_ARGUMENT);
  });
});

describe("what may be shown of a URL", () => {
  it("drops user:password and a signing query, keeps a harmless query", () => {
    expect(redactUri("https://user:pass@host:8443/a/b.bin")).toBe("https://host:8443/a/b.bin");
    expect(redactUri("https://bucket.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA&X-Amz-Signature=ff")).toBe(
      "https://bucket.s3.amazonaws.com/k",
    );
    expect(redactUri("https://acct.blob.core.windows.net/c/f?sv=2020&se=2030&sig=abc")).toBe("https://acct.blob.core.windows.net/c/f");
    expect(redactUri("https://host/f.bin?version=2")).toBe("https://host/f.bin?version=2");
  });
});

describe("byte ranges and retries", () => {
  it("accepts an answer within the asked range, refuses one elsewhere", () => {
    expect(parseContentRange("bytes 10-19/100")).toEqual({ start: 10, end: 19, total: 100 });
    expect(parseContentRange("bytes 10-19/*")).toEqual({ start: 10, end: 19, total: undefined });
    expect(parseContentRange("bytes 10-200/100")).toBeUndefined();
    expect(checkAnswerRange("u", "bytes 10-14/100", 10, 10)).toEqual({ start: 10, end: 14, total: 100 });
    expect(thrown(() => checkAnswerRange("u", "bytes 0-9/100", 10, 10)).code).toBe(Code.FAILED_PRECONDITION);
    expect(thrown(() => checkAnswerRange("u", "bytes 10-29/100", 10, 10)).code).toBe(Code.FAILED_PRECONDITION);
  });

  it("backs off by doubling, with jitter between half and all of the step, up to the cap", () => {
    const policy = { ...defaultRetryPolicy, initialDelayMs: 100, maxDelayMs: 1_000 };
    expect([1, 2, 3, 4, 5].map((attempt) => backoffDelayMs(policy, attempt, () => 1))).toEqual([100, 200, 400, 800, 1_000]);
    expect([1, 2, 3].map((attempt) => backoffDelayMs(policy, attempt, () => 0))).toEqual([50, 100, 200]);
    expect(resolveSourceOptions({}).policy).toEqual({ attempts: 4, initialDelayMs: 100, maxDelayMs: 2_000, timeoutMs: 30_000 });
  });
});
