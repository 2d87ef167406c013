/**
 * The log context on every line: a real pino with the cli's options, writing into an
 * array. A field given on the call wins over the context, a child logger's binding is
 * kept and wins too, and no line has a key twice.
 */

import { LogContext } from "@trainfleet/runtime";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { loggerOptions } from "../src/logger.js";

function capture(context: LogContext) {
  const lines: string[] = [];
  const logger = pino(loggerOptions("debug", { role: "worker" }, context), { write: (line: string) => void lines.push(line) });
  const parsed = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  return { logger, lines, parsed };
}

/** The keys of a JSON line in the order written, repeats included (JSON.parse would hide a repeat). */
function rawKeys(line: string): string[] {
  return [...line.matchAll(/"([A-Za-z]+)":/g)].map((match) => match[1]!);
}

describe("the log context", () => {
  it("adds its fields to every line, the role's base fields kept", () => {
    const context = new LogContext();
    context.set({ jobId: "mnist", workerId: "w-1", rank: 0, generation: 2, step: 17 });
    const { logger, parsed } = capture(context);
    logger.info({ loss: 0.5 }, "step done");
    expect(parsed()[0]).toMatchObject({
      role: "worker",
      pid: process.pid,
      jobId: "mnist",
      workerId: "w-1",
      rank: 0,
      generation: 2,
      step: 17,
      loss: 0.5,
      msg: "step done",
    });
  });

  it("lets a field given on the call win, once, without changing the context", () => {
    const context = new LogContext();
    context.set({ jobId: "mnist", step: 17 });
    const { logger, lines, parsed } = capture(context);
    logger.info({ step: 3 }, "explicit");
    logger.info({}, "from the context");
    expect(parsed().map((line) => line["step"])).toEqual([3, 17]);
    expect(rawKeys(lines[0]!).filter((key) => key === "step")).toEqual(["step"]);
  });

  it("keeps a child logger's bindings, which win over the context, with no key twice", () => {
    const context = new LogContext();
    context.set({ jobId: "mnist", generation: 2, psShard: 0 });
    const { logger, lines, parsed } = capture(context);
    const child = logger.child({ psShard: 1, nats: "nats://x" });
    child.warn({}, "child");
    child.child({ generation: 5 }).info({}, "grandchild");
    logger.info({}, "root");
    expect(parsed()).toEqual([
      expect.objectContaining({ psShard: 1, nats: "nats://x", jobId: "mnist", generation: 2, msg: "child" }),
      expect.objectContaining({ psShard: 1, nats: "nats://x", jobId: "mnist", generation: 5, msg: "grandchild" }),
      expect.objectContaining({ psShard: 0, jobId: "mnist", generation: 2, msg: "root" }),
    ]);
    for (const line of lines) {
      const keys = rawKeys(line);
      expect(keys, line).toEqual([...new Set(keys)]);
    }
  });

  it("reads a function's value as each line is written, leaving the field out while it is undefined", () => {
    const context = new LogContext();
    let version: number | undefined;
    context.set({ psShard: 0, step: () => version });
    const { logger, parsed } = capture(context);
    logger.info({}, "before the first generation");
    version = 4;
    logger.info({}, "at version 4");
    version = 5;
    logger.debug({}, "at version 5");
    expect(parsed().map((line) => [line["psShard"], line["step"]])).toEqual([
      [0, undefined],
      [0, 4],
      [0, 5],
    ]);
    expect("step" in parsed()[0]!).toBe(false);
  });

  it("forgets fields that are cleared or set to undefined", () => {
    const context = new LogContext();
    context.set({ jobId: "mnist", workerId: "w-1", rank: 1, generation: 3, step: 9 });
    context.clear("rank", "generation");
    context.set({ step: undefined, workerId: "w-2" });
    expect(context.fields()).toEqual({ jobId: "mnist", workerId: "w-2" });
    expect(context.fields(new Set(["jobId"]))).toEqual({ workerId: "w-2" });
  });

  it("takes out what a set put in when told to, but not what was set anew since", () => {
    const context = new LogContext();
    context.set({ jobId: "mnist" });
    const forget = context.set({ psShard: 0, generation: () => 1, step: () => 2 });
    context.set({ step: 7 });
    forget();
    expect(context.fields()).toEqual({ jobId: "mnist", step: 7 });
  });
});
