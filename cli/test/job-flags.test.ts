/**
 * The job flags against spec's defaults. Each flag's "Default ..." in `--help` is the value
 * spec's table gives (read here from what resolveJobSpec makes of an empty spec, and from
 * modelDefaults and optimizerDefaults, never from the CLI), and a flag left out resolves to
 * it. A spec file with no job flags over it, as `trainfleet run` hands its coordinator, comes
 * back as it was resolved, and a bad one is still refused.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, equals, toJson } from "@bufbuild/protobuf";
import type { JobSpec } from "@trainfleet/proto";
import { Code, DataPlane, JobSpecSchema, Loss, Placement, Shuffle, TrainfleetError, TrainingMode, WireDtype } from "@trainfleet/proto";
import { modelDefaults, optimizerDefaults, resolveJobSpec } from "@trainfleet/spec";
import { describe, expect, it } from "vitest";
import { helpText, parseFlags } from "../src/flags.js";
import { jobFlags, jobSpecFromFlags } from "../src/job-flags.js";

/** Spec's defaults, as resolveJobSpec fills them into a spec that says nothing. */
const resolved = resolveJobSpec(create(JobSpecSchema));
const cnn = modelDefaults.cnn.kind.value;
const adam = optimizerDefaults.adam.kind.value;
const sgd = optimizerDefaults.sgd.kind.value;
/** How a flag spells an enum value: TrainingMode.SYNC is "sync". */
const flagValue = (names: Record<number, string>, value: number) => names[value]!.toLowerCase();

/** What each job flag's help must give as its default, from spec alone. */
const expectedDefaults: Record<string, string | undefined> = {
  "job-id": `${resolved.jobId} (a sharded --dataset: its folder's name)`,
  model: resolved.model!.kind.case!,
  hidden: resolved.model!.kind.case === "mlp" ? resolved.model!.kind.value.hiddenUnits.join(",") : "not an MLP",
  "conv-filters": cnn.convFilters.join(","),
  "dense-units": String(cnn.denseUnits),
  // A user's model and dataset have no default: without them the job trains the built-ins.
  "model-json": undefined,
  "model-sha256": undefined,
  loss: undefined,
  "model-module": undefined,
  dataset: resolved.dataset!.name,
  "eval-dataset": undefined,
  "dataset-sha256": undefined,
  workers: String(resolved.workers!.replicas),
  "min-workers": `${resolved.workers!.minWorkers} (colocated: --workers)`,
  "max-workers": "--workers",
  "pause-timeout": String(resolved.workers!.pauseTimeoutSeconds),
  "step-deadline-ms": String(resolved.workers!.stepDeadlineMs),
  "max-missed-deadlines": String(resolved.workers!.maxMissedDeadlines),
  shards: String(resolved.parameterServers!.shards),
  epochs: String(resolved.training!.epochs),
  "batch-size": String(resolved.training!.batchSizePerWorker),
  "max-steps": String(resolved.training!.maxSteps),
  mode: flagValue(TrainingMode, resolved.training!.mode),
  "max-staleness": String(resolved.training!.maxStaleness),
  optimizer: resolved.training!.optimizer!.kind.case!,
  lr: `${adam.learningRate} for adam, ${sgd.learningRate} for sgd`,
  momentum: String(sgd.momentum),
  seed: String(resolved.training!.seed),
  shuffle: flagValue(Shuffle, resolved.training!.shuffle),
  "shuffle-window": String(resolved.training!.shuffleWindow),
  "eval-samples": String(resolved.training!.evalSamples),
  placement: flagValue(Placement, resolved.parameterServers!.placement),
  "wire-dtype": `${flagValue(WireDtype, resolved.parameterServers!.wireDtype)}, the only exact one`,
  "data-plane": flagValue(DataPlane, resolved.parameterServers!.dataPlane),
  "chunk-bytes": String(resolved.parameterServers!.chunkBytes),
  "checkpoint-every": String(resolved.checkpoints!.everySteps),
};

/** The "Default ..." of each flag, as `--help` prints it. */
function printedDefaults(): Record<string, string | undefined> {
  const help = helpText("usage", "summary", jobFlags);
  const printed: Record<string, string | undefined> = {};
  for (const [, name, text] of help.matchAll(/^ {2}--([a-z-]+)[^\n]*\n {6}([^\n]*)$/gm)) {
    printed[name!] = / Default (.+?)\.(?: |$)/.exec(text!)?.[1];
  }
  return printed;
}

async function fromArgs(argv: string[]): Promise<JobSpec> {
  return jobSpecFromFlags(parseFlags(jobFlags, argv, {}));
}

const json = (spec: JobSpec) => toJson(JobSpecSchema, spec, { alwaysEmitImplicit: true });

describe("the job flags' defaults", () => {
  it("cover every job flag but --spec", () => {
    expect(Object.keys(expectedDefaults).sort()).toEqual(
      Object.keys(jobFlags)
        .filter((name) => name !== "spec")
        .sort(),
    );
  });

  it.each(Object.entries(expectedDefaults))("--%s prints spec's default: %s", (name, expected) => {
    expect(printedDefaults()[name]).toBe(expected);
  });

  it("are what the flags resolve to when none is given", async () => {
    expect(json(await fromArgs([]))).toEqual(json(resolved));
    expect(resolved.workers!.maxWorkers).toBe(resolved.workers!.replicas);
  });

  it("describe a user's Layers model and sharded dataset, and refuse what goes with neither", async () => {
    const spec = await fromArgs([
      "--model-json",
      "s3://models/net/model.json",
      "--model-sha256",
      "ab".repeat(32),
      "--loss",
      "mean-squared-error",
      "--model-module",
      "/opt/layers.mjs",
      "--dataset",
      "data/wine/dataset.json",
      "--eval-dataset",
      "data/wine/test.json",
    ]);
    expect(spec.model!.kind).toEqual({
      case: "layers",
      value: expect.objectContaining({
        uri: "s3://models/net/model.json",
        sha256: "ab".repeat(32),
        loss: Loss.MEAN_SQUARED_ERROR,
        module: "/opt/layers.mjs",
      }),
    });
    expect(spec.dataset).toMatchObject({ name: "", manifest: "data/wine/dataset.json", evalManifest: "data/wine/test.json" });
    expect((await fromArgs(["--dataset", "fashion-mnist"])).dataset).toMatchObject({ name: "fashion-mnist", manifest: "" });
    await expect(fromArgs(["--model", "cnn", "--model-json", "m.json"])).rejects.toThrow(
      /--model cnn and --model-json m.json each name the model: give one/,
    );
    await expect(fromArgs(["--loss", "mean-squared-error"])).rejects.toThrow(
      /--model-sha256, --loss and --model-module go with --model-json/,
    );
    await expect(fromArgs(["--eval-dataset", "t.json"])).rejects.toThrow(
      /--eval-dataset and --dataset-sha256 go with a manifest given as --dataset/,
    );
  });

  it("choose the sample order, and refuse block shuffle on the built-in dataset without a window", async () => {
    expect((await fromArgs(["--shuffle", "block", "--shuffle-window", "512"])).training).toMatchObject({
      shuffle: Shuffle.BLOCK,
      shuffleWindow: 512,
    });
    expect((await fromArgs(["--shuffle", "feistel"])).training!.shuffle).toBe(Shuffle.FEISTEL);
    expect((await fromArgs(["--dataset", "data/digits/dataset.json", "--shuffle", "block"])).training).toMatchObject({
      shuffle: Shuffle.BLOCK,
      shuffleWindow: 0,
    });
    await expect(fromArgs(["--shuffle", "block"])).rejects.toThrow(
      /^spec\.training\.shuffleWindow: block shuffle deals windows of records to the workers, and the built-in dataset fashion-mnist has no blocks/,
    );
    await expect(fromArgs(["--shuffle-window", "512"])).rejects.toThrow(/^spec\.training\.shuffleWindow: applies to block shuffle only/);
  });

  it("fill a model or optimizer named by a flag from spec's table", async () => {
    expect((await fromArgs(["--model", "cnn"])).model!.kind.value).toMatchObject({
      convFilters: cnn.convFilters,
      kernelSize: cnn.kernelSize,
      denseUnits: cnn.denseUnits,
    });
    expect((await fromArgs(["--optimizer", "sgd"])).training!.optimizer!.kind.value).toMatchObject({
      learningRate: sgd.learningRate,
      momentum: sgd.momentum,
    });
    expect((await fromArgs(["--optimizer", "adam"])).training!.optimizer!.kind.value).toMatchObject({
      learningRate: adam.learningRate,
      beta1: adam.beta1,
      beta2: adam.beta2,
      epsilon: adam.epsilon,
    });
    const colocated = await fromArgs(["--placement", "colocated", "--workers", "3"]);
    expect([colocated.workers!.minWorkers, colocated.workers!.maxWorkers, colocated.parameterServers!.shards]).toEqual([3, 3, 3]);
  });
});

describe("a spec file", () => {
  const folder = mkdtempSync(join(tmpdir(), "trainfleet-job-flags-"));
  const write = (name: string, spec: unknown) => {
    const path = join(folder, name);
    writeFileSync(path, JSON.stringify(spec));
    return path;
  };

  it("with no job flags over it (what `trainfleet run` hands its coordinator) comes back as it was resolved", async () => {
    const spec = await fromArgs([
      "--workers",
      "3",
      "--min-workers",
      "2",
      "--model",
      "cnn",
      "--optimizer",
      "sgd",
      "--checkpoint-every",
      "4",
      "--job-id",
      "handed-over",
    ]);
    const path = write("spec.json", toJson(JobSpecSchema, spec));
    const child = await fromArgs(["--spec", path]);
    expect(equals(JobSpecSchema, child, spec)).toBe(true);
  });

  it("is overridden by the job flags given", async () => {
    const path = write("base.json", { jobId: "base", training: { epochs: 5 }, workers: { replicas: 4 } });
    const spec = await fromArgs(["--spec", path, "--epochs", "2"]);
    expect([spec.jobId, spec.training!.epochs, spec.workers!.replicas]).toEqual(["base", 2, 4]);
  });

  it("is checked even when no flag is merged over it", async () => {
    const path = write("hostile.json", { workers: { replicas: 5000 } });
    const error = await fromArgs(["--spec", path]).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(TrainfleetError);
    expect([(error as TrainfleetError).code, (error as TrainfleetError).message]).toEqual([
      Code.INVALID_ARGUMENT,
      "spec.workers.replicas: 5000 must be between 1 and 1024",
    ]);
  });
});
