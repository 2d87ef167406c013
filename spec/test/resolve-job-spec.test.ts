/**
 * resolveJobSpec against its defaults table: an empty spec resolves to exactly the table
 * (so a value changed in the table is the value every role gets, and a table entry that
 * resolveJobSpec forgot to apply shows up here); resolving is idempotent, so a process that
 * checks a spec another process resolved gets the same spec back; and neither the input
 * nor the table is changed by it.
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import { clone, create, equals, toJson } from "@bufbuild/protobuf";
import { DataPlane, JobSpecSchema, Placement, Shuffle, TrainingMode, WireDtype } from "@trainfleet/proto";
import { describe, expect, it } from "vitest";
import { defaultJobSpec, modelDefaults, optimizerDefaults } from "../src/job-spec-defaults.js";
import { resolveJobSpec } from "../src/resolve-job-spec.js";

const json = (init: MessageInitShape<typeof JobSpecSchema>) =>
  toJson(JobSpecSchema, create(JobSpecSchema, init), { alwaysEmitImplicit: true });
const resolvedJson = (init: MessageInitShape<typeof JobSpecSchema>) =>
  toJson(JobSpecSchema, resolveJobSpec(create(JobSpecSchema, init)), { alwaysEmitImplicit: true });

describe("the JobSpec defaults table", () => {
  it("is what an empty spec resolves to, with workers.maxWorkers = workers.replicas", () => {
    const expected = json({ ...defaultJobSpec, workers: { ...defaultJobSpec.workers, maxWorkers: defaultJobSpec.workers.replicas } });
    expect(resolvedJson({})).toEqual(expected);
    // Messages given but empty get the same values, field by field.
    expect(resolvedJson({ dataset: {}, training: {}, workers: {}, parameterServers: {}, checkpoints: {}, model: {} })).toEqual(expected);
    expect(resolvedJson({ training: { optimizer: {} } })).toEqual(expected);
  });

  it("holds today's values", () => {
    // Spelled out, so that a change of a default is a decision made here too.
    expect(resolvedJson({})).toEqual({
      jobId: "fashion-mnist",
      model: { mlp: { hiddenUnits: [256] } },
      dataset: { name: "fashion-mnist", manifest: "", evalManifest: "", sha256: "" },
      training: {
        epochs: 3,
        batchSizePerWorker: 64,
        maxSteps: 0,
        seed: 1,
        evalSamples: 0,
        optimizer: { adam: { learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } },
        mode: "TRAINING_MODE_SYNC",
        maxStaleness: 0,
        shuffle: "SHUFFLE_GLOBAL",
        shuffleWindow: 0,
      },
      workers: { replicas: 2, minWorkers: 1, maxWorkers: 2, pauseTimeoutSeconds: 300, stepDeadlineMs: 60000, maxMissedDeadlines: 3 },
      parameterServers: {
        shards: 2,
        chunkBytes: 1048576,
        dataPlane: "DATA_PLANE_TCP",
        placement: "PLACEMENT_DEDICATED",
        wireDtype: "WIRE_DTYPE_FLOAT32",
      },
      checkpoints: { everySteps: 0 },
    });
    expect(modelDefaults.cnn.kind.value).toEqual({ convFilters: [8, 16], kernelSize: 3, denseUnits: 0 });
    expect(optimizerDefaults.sgd.kind.value).toEqual({ learningRate: 0.05, momentum: 0.9 });
  });

  it("fills adam's betas and epsilon into a given adam, and nothing into a given SGD or CNN", () => {
    const spec = resolveJobSpec(
      create(JobSpecSchema, { training: { optimizer: { kind: { case: "adam", value: { learningRate: 0.01 } } } } }),
    );
    expect(spec.training?.optimizer?.kind.value).toMatchObject({ learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 });
    const sgd = resolveJobSpec(create(JobSpecSchema, { training: { optimizer: { kind: { case: "sgd", value: { learningRate: 0.1 } } } } }));
    expect(sgd.training?.optimizer?.kind.value).toMatchObject({ learningRate: 0.1, momentum: 0 });
    const cnn = resolveJobSpec(create(JobSpecSchema, { model: { kind: { case: "cnn", value: { convFilters: [4], kernelSize: 5 } } } }));
    expect(cnn.model?.kind.value).toMatchObject({ convFilters: [4], kernelSize: 5, denseUnits: 0 });
  });

  it("cannot be changed, and shares no array with a resolved spec", () => {
    expect(() => {
      defaultJobSpec.workers.replicas = 5;
    }).toThrow(TypeError);
    expect(() => modelDefaults.mlp.kind.value.hiddenUnits.push(1)).toThrow(TypeError);
    const spec = resolveJobSpec(create(JobSpecSchema));
    const model = spec.model!.kind;
    if (model.case !== "mlp") throw new Error("expected the default MLP");
    model.value.hiddenUnits.push(10);
    expect(modelDefaults.mlp.kind.value.hiddenUnits).toEqual([256]);
    expect(resolvedJson({})).toMatchObject({ model: { mlp: { hiddenUnits: [256] } } });
  });
});

describe("resolveJobSpec", () => {
  const specs: Array<[string, MessageInitShape<typeof JobSpecSchema>]> = [
    ["empty", {}],
    ["colocated", { workers: { replicas: 3 }, parameterServers: { placement: Placement.COLOCATED } }],
    [
      "elastic",
      { workers: { replicas: 4, minWorkers: 2, maxWorkers: 6, pauseTimeoutSeconds: 30, stepDeadlineMs: 500, maxMissedDeadlines: 2 } },
    ],
    [
      "cnn with sgd",
      {
        model: { kind: { case: "cnn", value: { convFilters: [8, 16], kernelSize: 3, denseUnits: 32 } } },
        training: { optimizer: { kind: { case: "sgd", value: { learningRate: 0.05, momentum: 0.9 } } } },
      },
    ],
    [
      "softmax regression",
      { model: { kind: { case: "mlp", value: { hiddenUnits: [] } } }, training: { epochs: 1, maxSteps: 10, evalSamples: 100, seed: 7 } },
    ],
    ["async", { training: { mode: TrainingMode.ASYNC, maxStaleness: 4 } }],
    ["block shuffle", { training: { shuffle: Shuffle.BLOCK, shuffleWindow: 512 } }],
    [
      "three shards, bfloat16 on tcp, checkpoints",
      {
        parameterServers: { shards: 3, chunkBytes: 4096, dataPlane: DataPlane.TCP, wireDtype: WireDtype.BFLOAT16 },
        checkpoints: { everySteps: 5 },
      },
    ],
    ["grpc data plane", { jobId: "grpc-job", parameterServers: { dataPlane: DataPlane.GRPC } }],
  ];

  it.each(specs)("is idempotent: %s resolves to itself once resolved", (_name, init) => {
    const once = resolveJobSpec(create(JobSpecSchema, init));
    const twice = resolveJobSpec(once);
    expect(toJson(JobSpecSchema, twice, { alwaysEmitImplicit: true })).toEqual(toJson(JobSpecSchema, once, { alwaysEmitImplicit: true }));
    expect(equals(JobSpecSchema, twice, once)).toBe(true);
    // A new message, not the one given.
    expect(twice).not.toBe(once);
  });

  it.each(specs)("leaves its input as it was: %s", (_name, init) => {
    const input = create(JobSpecSchema, init);
    const before = clone(JobSpecSchema, input);
    resolveJobSpec(input);
    expect(equals(JobSpecSchema, input, before)).toBe(true);
  });
});
