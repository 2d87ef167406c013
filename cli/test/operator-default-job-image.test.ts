/**
 * `trainfleet operator --default-job-image` (TRAINFLEET_DEFAULT_JOB_IMAGE): the image of a
 * TrainingJob that leaves spec.image out. What the chart passes (its jobImage value, rendered by
 * the real helm) parses to that image; a value that is no image reference is refused, naming
 * the flag.
 */

import { chartOperatorArgs } from "@trainfleet/testing/fixtures/helm";
import { describe, expect, it } from "vitest";
import { defaultJobImageFromFlags, operatorCommand } from "../src/commands/operator.js";
import { parseFlags } from "../src/flags.js";

const imageOf = (argv: string[], env: Record<string, string> = {}) =>
  defaultJobImageFromFlags(parseFlags(operatorCommand.flags, argv, env));

describe("--default-job-image", () => {
  it("is the chart's jobImage, as the chart passes it", () => {
    const args = chartOperatorArgs(["--set", "image.repository=registry.example.com/team/trainfleet", "--set", "jobImage.tag=0.1.0-gpu"]);
    expect(imageOf(args)).toBe("registry.example.com/team/trainfleet:0.1.0-gpu");
  });

  it("is unset unless given, and may come from TRAINFLEET_DEFAULT_JOB_IMAGE", () => {
    expect(imageOf([])).toBeUndefined();
    expect(imageOf([], { TRAINFLEET_DEFAULT_JOB_IMAGE: "trainfleet:0.1.0" })).toBe("trainfleet:0.1.0");
  });

  it.each([
    "trainfleet",
    "localhost:5000/team/trainfleet:0.1.0",
    "[::1]:5000/trainfleet:0.1.0",
    "registry.example.com/team/trainfleet@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "registry.example.com/team/trainfleet:0.1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
  ])("accepts the image reference %s", (reference) => {
    expect(imageOf(["--default-job-image", reference])).toBe(reference);
  });

  it.each(["Registry.example.com/Team/Trainfleet:0.1.0", "trainfleet:0.1.0 --push", "trainfleet:", "trainfleet:-gpu", "/trainfleet:0.1.0"])(
    "refuses %j, naming the flag and the form it takes",
    (value) => {
      expect(() => imageOf(["--default-job-image", value])).toThrow(
        `--default-job-image: "${value}" is not an image reference; give [registry/]repository[:tag][@digest] in lower case, e.g. registry.example.com/team/trainfleet:0.1.0`,
      );
    },
  );
});
