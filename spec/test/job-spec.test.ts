import type { MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { Code, DataPlane, DatasetSpecSchema, JobSpecSchema, Placement, Shuffle, TrainfleetError, TrainingMode } from "@trainfleet/proto";
import { describe, expect, it } from "vitest";
import { dataShape } from "../src/data-shape.js";
import { parameterLayout } from "../src/parameter-layout.js";
import { resolveJobSpec } from "../src/resolve-job-spec.js";

function resolveError(init: MessageInitShape<typeof JobSpecSchema>): TrainfleetError {
  try {
    resolveJobSpec(create(JobSpecSchema, init));
  } catch (error) {
    expect(error).toBeInstanceOf(TrainfleetError);
    return error as TrainfleetError;
  }
  throw new Error("expected the spec to be rejected");
}

describe("JobSpec", () => {
  it("fills unset fields with defaults", () => {
    const spec = resolveJobSpec(create(JobSpecSchema, { training: { epochs: 1 } }));
    expect(spec.jobId).toBe("fashion-mnist");
    expect(spec.model?.kind).toEqual({ case: "mlp", value: expect.objectContaining({ hiddenUnits: [256] }) });
    expect(spec.training).toMatchObject({ epochs: 1, batchSizePerWorker: 64, seed: 1 });
    expect(spec.training?.optimizer?.kind.case).toBe("adam");
    expect(spec.workers?.replicas).toBe(2);
    expect(spec.parameterServers).toMatchObject({
      shards: 2,
      chunkBytes: 1048576,
      dataPlane: DataPlane.TCP,
      placement: Placement.DEDICATED,
    });
    // Only the just-in-time checkpoint on SIGTERM.
    expect(spec.checkpoints?.everySteps).toBe(0);
  });

  it("makes workers elastic by default: min 1, max replicas, with a pause timeout and a step deadline; colocated placement is fixed", () => {
    const spec = resolveJobSpec(create(JobSpecSchema, { workers: { replicas: 3 } }));
    expect(spec.workers).toMatchObject({
      replicas: 3,
      minWorkers: 1,
      maxWorkers: 3,
      pauseTimeoutSeconds: 300,
      stepDeadlineMs: 60_000,
      maxMissedDeadlines: 3,
    });
    const colocated = resolveJobSpec(
      create(JobSpecSchema, { workers: { replicas: 3 }, parameterServers: { placement: Placement.COLOCATED } }),
    );
    expect(colocated.workers).toMatchObject({ minWorkers: 3, maxWorkers: 3 });
  });

  it.each([
    [{ replicas: 2, minWorkers: 3 }, "spec.workers.minWorkers", "spec.workers.minWorkers: 3 must be between 1 and workers.replicas (2)"],
    [{ replicas: 4, maxWorkers: 3 }, "spec.workers.maxWorkers", "spec.workers.maxWorkers: 3 must be between workers.replicas (4) and 1024"],
    [
      { replicas: 2, pauseTimeoutSeconds: 700_000 },
      "spec.workers.pauseTimeoutSeconds",
      "spec.workers.pauseTimeoutSeconds: 700000 must be between 1 and 604800 (a week)",
    ],
    [
      { replicas: 2, stepDeadlineMs: 50 },
      "spec.workers.stepDeadlineMs",
      "spec.workers.stepDeadlineMs: 50 must be between 100 and 86400000 (a day)",
    ],
    [
      { replicas: 2, maxMissedDeadlines: 1001 },
      "spec.workers.maxMissedDeadlines",
      "spec.workers.maxMissedDeadlines: 1001 must be between 1 and 1000",
    ],
  ])("rejects workers %j naming %s", (workers, field, message) => {
    const error = resolveError({ workers });
    expect([error.code, error.field, error.message]).toEqual([Code.INVALID_ARGUMENT, field, message]);
  });

  it("defaults to sync mode, and keeps async mode's limits: a staleness bound only in async, dedicated shards, no periodic checkpoints", () => {
    expect(resolveJobSpec(create(JobSpecSchema, {})).training).toMatchObject({ mode: TrainingMode.SYNC, maxStaleness: 0 });
    expect(resolveJobSpec(create(JobSpecSchema, { training: { mode: TrainingMode.ASYNC, maxStaleness: 4 } })).training).toMatchObject({
      mode: TrainingMode.ASYNC,
      maxStaleness: 4,
    });
    const cases: Array<[MessageInitShape<typeof JobSpecSchema>, string, RegExp]> = [
      [
        { training: { maxStaleness: 3 } },
        "spec.training.maxStaleness",
        /applies to async mode only: leave it unset, or set training.mode to TRAINING_MODE_ASYNC/,
      ],
      [
        { training: { mode: TrainingMode.ASYNC, maxStaleness: 10_001 } },
        "spec.training.maxStaleness",
        /must be between 0 \(no bound\) and 10000/,
      ],
      [
        { training: { mode: TrainingMode.ASYNC }, parameterServers: { placement: Placement.COLOCATED } },
        "spec.parameterServers.placement",
        /async mode needs dedicated shards/,
      ],
      [
        { training: { mode: TrainingMode.ASYNC }, checkpoints: { everySteps: 10 } },
        "spec.checkpoints.everySteps",
        /async mode takes no periodic checkpoints yet/,
      ],
    ];
    for (const [init, field, message] of cases) {
      const error = resolveError(init);
      expect(error.field).toBe(field);
      expect(error.message).toMatch(message);
    }
  });

  it("defaults to the global shuffle; takes block shuffle with a window or a sharded dataset's blocks, and feistel anywhere", () => {
    expect(resolveJobSpec(create(JobSpecSchema, {})).training).toMatchObject({ shuffle: Shuffle.GLOBAL, shuffleWindow: 0 });
    const facts = { digest: "a".repeat(64), trainRecords: 100, evalRecords: 10, featureShape: [4], classes: 3 };
    const accepted: Array<MessageInitShape<typeof JobSpecSchema>> = [
      { training: { shuffle: Shuffle.BLOCK, shuffleWindow: 1024 } },
      { training: { shuffle: Shuffle.BLOCK, shuffleWindow: 16_777_216 } },
      // A manifest not read yet: its block size is checked once its facts are pinned.
      { training: { shuffle: Shuffle.BLOCK }, dataset: { manifest: "data/dataset.json" } },
      { training: { shuffle: Shuffle.BLOCK }, dataset: { manifest: "data/dataset.json", facts: { ...facts, recordsPerBlock: 25 } } },
      { training: { shuffle: Shuffle.FEISTEL } },
      { training: { shuffle: Shuffle.FEISTEL }, dataset: { manifest: "data/dataset.json", facts } },
    ];
    for (const init of accepted) expect(() => resolveJobSpec(create(JobSpecSchema, init)), JSON.stringify(init)).not.toThrow();
    const cases: Array<[MessageInitShape<typeof JobSpecSchema>, RegExp]> = [
      [
        { training: { shuffle: Shuffle.BLOCK } },
        /^spec.training.shuffleWindow: block shuffle deals windows of records to the workers, and the built-in dataset fashion-mnist has no blocks to make them of: give training.shuffleWindow/,
      ],
      [
        { training: { shuffle: Shuffle.BLOCK }, dataset: { manifest: "data/dataset.json", facts } },
        /^spec.training.shuffleWindow: the facts pinned for data\/dataset.json give no block size \(dataset.facts.recordsPerBlock is 0\)/,
      ],
      [
        { training: { shuffleWindow: 64 } },
        /^spec.training.shuffleWindow: applies to block shuffle only: leave it unset, or set training.shuffle/,
      ],
      [
        { training: { shuffle: Shuffle.BLOCK, shuffleWindow: 16_777_217 } },
        /^spec.training.shuffleWindow: 16777217 must be between 0 \(the dataset's block size\) and 16777216 records/,
      ],
      [{ training: { shuffle: 7 as Shuffle } }, /^spec.training.shuffle: 7 must be SHUFFLE_GLOBAL, SHUFFLE_BLOCK or SHUFFLE_FEISTEL/],
    ];
    for (const [init, message] of cases) {
      const error = resolveError(init);
      expect(error.code).toBe(Code.INVALID_ARGUMENT);
      expect(error.message).toMatch(message);
    }
  });

  it("refuses elastic limits with colocated placement, saying what to do", () => {
    const error = resolveError({ workers: { replicas: 2, minWorkers: 1 }, parameterServers: { placement: Placement.COLOCATED } });
    expect(error.field).toBe("spec.workers.minWorkers");
    expect(error.message).toMatch(
      /colocated placement is not elastic \(each worker process holds a shard\): leave workers.minWorkers and workers.maxWorkers unset or make both 2, or use dedicated placement/,
    );
  });

  it("gives colocated placement one shard per worker", () => {
    const spec = resolveJobSpec(create(JobSpecSchema, { workers: { replicas: 3 }, parameterServers: { placement: Placement.COLOCATED } }));
    expect(spec.parameterServers).toMatchObject({ shards: 3, placement: Placement.COLOCATED, dataPlane: DataPlane.TCP });
  });

  it.each([
    [{ jobId: "Bad_Name" }, "spec.jobId", /must be a DNS label/],
    [
      { model: { kind: { case: "mlp", value: { hiddenUnits: [64, 0] } } } },
      "spec.model.mlp.hiddenUnits[1]",
      /0 must be between 1 and 65536/,
    ],
    [{ model: { kind: { case: "cnn", value: { convFilters: [8], kernelSize: 4 } } } }, "spec.model.cnn.kernelSize", /must be odd/],
    [
      { dataset: { name: "imagenet" } },
      "spec.dataset.name",
      /unknown dataset "imagenet"; built in: fashion-mnist; or give spec.dataset.manifest/,
    ],
    [
      { model: { kind: { case: "layers", value: {} } } },
      "spec.model.layers.uri",
      /give the model.json: a local path, or an http\(s\):\/\/ or s3:\/\/ URL/,
    ],
    [
      { model: { kind: { case: "layers", value: { uri: "m/model.json", sha256: "ABC" } } } },
      "spec.model.layers.sha256",
      /64 lower-case hex/,
    ],
    [
      { model: { kind: { case: "layers", value: { uri: "m/model.json", module: "https://example.com/layers.mjs" } } } },
      "spec.model.layers.module",
      /is a URL: a module runs code in the workers, so it comes from a local path/,
    ],
    [
      { dataset: { name: "fashion-mnist", manifest: "d/dataset.json" } },
      "spec.dataset.name",
      /give either a built-in dataset's name or a manifest, not both/,
    ],
    [{ dataset: { evalManifest: "d/test.json" } }, "spec.dataset.evalManifest", /goes with spec.dataset.manifest/],
    [
      {
        model: { kind: { case: "cnn", value: { convFilters: [8, 16], kernelSize: 3 } } },
        dataset: {
          manifest: "wine/dataset.json",
          facts: { digest: "d", trainRecords: 100, evalRecords: 10, featureShape: [13], classes: 3 },
        },
      },
      "spec.model.cnn.convFilters",
      /the dataset's samples are 13: give an image dataset at least 4x4/,
    ],
    [
      {
        dataset: {
          manifest: "d/dataset.json",
          facts: { digest: "d", trainRecords: 100, evalRecords: 10, featureShape: [4], classes: 3, labelSize: 2 },
        },
      },
      "spec.dataset.facts",
      /either a class of 2 or more \(classes 3\) or regression values \(labelSize 2\), not both/,
    ],
    [
      { training: { optimizer: { kind: { case: "sgd", value: { learningRate: -1 } } } } },
      "spec.training.optimizer.sgd.learningRate",
      /must be in \(0, 10\]/,
    ],
    [
      { training: { optimizer: { kind: { case: "sgd", value: { learningRate: 0.1, momentum: 1 } } } } },
      "spec.training.optimizer.sgd.momentum",
      /must be in \[0, 1\)/,
    ],
    [
      { training: { optimizer: { kind: { case: "adam", value: { learningRate: Number.NaN } } } } },
      "spec.training.optimizer.adam.learningRate",
      /NaN must be in/,
    ],
    [{ training: { epochs: 20000 } }, "spec.training.epochs", /between 1 and 10000/],
    [{ workers: { replicas: 5000 } }, "spec.workers.replicas", /between 1 and 1024/],
    [{ parameterServers: { chunkBytes: 1001 } }, "spec.parameterServers.chunkBytes", /multiple of 4/],
    [{ parameterServers: { shards: 300 } }, "spec.parameterServers.shards", /between 1 and 256/],
    [
      { workers: { replicas: 3 }, parameterServers: { placement: 2, shards: 2 } },
      "spec.parameterServers.shards",
      /2 shards with colocated placement: it has one shard per worker, so leave it unset or make it 3/,
    ],
    [
      { parameterServers: { placement: 2, dataPlane: 1 } },
      "spec.parameterServers.dataPlane",
      /colocated placement reaches the other workers' shards over the TCP data channel/,
    ],
    [{ parameterServers: { dataPlane: 7 } }, "spec.parameterServers.dataPlane", /7 must be DATA_PLANE_TCP or DATA_PLANE_GRPC/],
    [
      { parameterServers: { dataPlane: 1, wireDtype: 2 } },
      "spec.parameterServers.wireDtype",
      /16-bit values travel on the TCP data channel only/,
    ],
    [
      { parameterServers: { wireDtype: 9 } },
      "spec.parameterServers.wireDtype",
      /9 must be WIRE_DTYPE_FLOAT32, WIRE_DTYPE_BFLOAT16 or WIRE_DTYPE_FLOAT16/,
    ],
  ] as Array<[MessageInitShape<typeof JobSpecSchema>, string, RegExp]>)("rejects %j naming %s", (init, field, message) => {
    const error = resolveError(init);
    expect(error.code).toBe(Code.INVALID_ARGUMENT);
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
  });
});

describe("a user's Layers model and a sharded dataset", () => {
  const artifact = {
    digest: "ab".repeat(32),
    tensors: [
      { name: "conv2d_Conv2D1/kernel", shape: [3, 3, 1, 4] },
      { name: "conv2d_Conv2D1/bias", shape: [4] },
      { name: "dense_Dense1/kernel", shape: [64, 10] },
    ],
  };
  const facts = { digest: "cd".repeat(32), trainRecords: 1500, evalRecords: 297, featureShape: [8, 8, 1], classes: 10 };

  it("lays out the pinned trainable weights in order, with Keras's Glorot fans", () => {
    const spec = resolveJobSpec(
      create(JobSpecSchema, {
        model: { kind: { case: "layers", value: { uri: "m/model.json", artifact } } },
        dataset: { manifest: "d.json", facts },
      }),
    );
    const layout = parameterLayout(spec.model!, dataShape(spec.dataset!));
    expect(layout.tensors.map(({ name, offset, size, fanIn, fanOut }) => ({ name, offset, size, fanIn, fanOut }))).toEqual([
      { name: "conv2d_Conv2D1/kernel", offset: 0, size: 36, fanIn: 9, fanOut: 36 },
      { name: "conv2d_Conv2D1/bias", offset: 36, size: 4, fanIn: 0, fanOut: 0 },
      { name: "dense_Dense1/kernel", offset: 40, size: 640, fanIn: 64, fanOut: 10 },
    ]);
    expect(layout.parameterCount).toBe(680);
    expect(dataShape(spec.dataset!)).toEqual({ featureShape: [8, 8, 1], classes: 10, labelSize: 0, trainRecords: 1500, evalRecords: 297 });
  });

  it("resolves a sharded dataset without giving it the built-in name, naming the job after the manifest's folder", () => {
    const spec = resolveJobSpec(create(JobSpecSchema, { dataset: { manifest: "d.json" } }));
    expect(spec.dataset!.name).toBe("");
    expect(spec.jobId).toBe("job");
    expect(resolveJobSpec(create(JobSpecSchema, { dataset: { manifest: "s3://bucket/UCI_Digits v2/dataset.json" } })).jobId).toBe(
      "uci-digits-v2",
    );
    expect(resolveJobSpec(create(JobSpecSchema, { dataset: { manifest: "data/digits/dataset.json" } })).jobId).toBe("digits");
    expect(resolveJobSpec(spec)).toEqual(spec);
  });

  it("refuses to lay out a model or a dataset whose files have not been read, saying who reads them", () => {
    const spec = resolveJobSpec(
      create(JobSpecSchema, { model: { kind: { case: "layers", value: { uri: "m/model.json" } } }, dataset: { manifest: "d.json" } }),
    );
    expect(() => dataShape(spec.dataset!)).toThrow(
      /spec.dataset.facts: the manifest d.json has not been read yet; trainfleet run, submit and coordinator read it/,
    );
    expect(() => parameterLayout(spec.model!, dataShape(create(DatasetSpecSchema, { name: "fashion-mnist" })))).toThrow(
      /spec.model.layers.artifact: the model m\/model.json has not been read yet/,
    );
  });
});
