import { describe, expect, it } from "vitest";
import type { Logger } from "../src/logger.js";
import { encodeUserinfo, redactingLogger, redactUrl, splitUserinfo, withUserinfo } from "../src/redact-url.js";

describe("URLs' userinfo", () => {
  it.each([
    ["nats://alice:s3cret@127.0.0.1:4222", "nats://127.0.0.1:4222"],
    ["nats://tok@h1:4222,nats://h2:4222", "nats://h1:4222,nats://h2:4222"],
    ["nats://u:p%40ss@h:1,nats://u:p%40ss@h2:1", "nats://h:1,nats://h2:1"],
    // An unencoded "@" in the password: everything up to the last "@" before the host goes.
    ["nats://u:p@ss@h:4222/x", "nats://h:4222/x"],
    ["cannot reach NATS at nats://u:pw@h:4222: Authorization Violation", "cannot reach NATS at nats://h:4222: Authorization Violation"],
    ["nats://h:4222 and user@example.com", "nats://h:4222 and user@example.com"],
  ])("redacts %s", (text, redacted) => {
    expect(redactUrl(text)).toBe(redacted);
  });

  it("splits userinfo off a list and puts it back on every URL, percent-encoded", () => {
    expect(splitUserinfo("nats://u:p%2F@h1:1,nats://h2:2")).toEqual({ urls: "nats://h1:1,nats://h2:2", userinfo: "u:p%2F" });
    expect(splitUserinfo("nats://h:1")).toEqual({ urls: "nats://h:1", userinfo: "" });
    expect(encodeUserinfo("us:er:p@ss/")).toBe("us:er%3Ap%40ss%2F");
    expect(encodeUserinfo("token")).toBe("token");
    expect(withUserinfo("nats://h1:1,nats://old@h2:2", "u:p%40")).toBe("nats://u:p%40@h1:1,nats://u:p%40@h2:2");
  });

  it("keeps userinfo out of every message and field a redacting logger passes on, its children's too", () => {
    const lines: Array<[string, object, string]> = [];
    const sink = (bound: object): Logger => ({
      debug: (fields, message) => void lines.push(["debug", { ...bound, ...fields }, message]),
      info: (fields, message) => void lines.push(["info", { ...bound, ...fields }, message]),
      warn: (fields, message) => void lines.push(["warn", { ...bound, ...fields }, message]),
      error: (fields, message) => void lines.push(["error", { ...bound, ...fields }, message]),
      child: (fields) => sink({ ...bound, ...fields }),
    });
    const logger = redactingLogger(sink({})).child({ nats: "nats://u:pw@h:1" });
    logger.warn({ err: new Error("at nats://u:pw@h:1"), nested: { urls: ["nats://t@h:2"] }, n: 3 }, "cannot reach nats://u:pw@h:1");
    expect(lines).toEqual([
      ["warn", { nats: "nats://h:1", err: "at nats://h:1", nested: { urls: ["nats://h:2"] }, n: 3 }, "cannot reach nats://h:1"],
    ]);
  });
});
