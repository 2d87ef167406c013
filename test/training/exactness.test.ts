/**
 * The correctness test everything rests on: N worker processes through sharded parameter
 * servers (real processes on 127.0.0.1; dedicated shards over the TCP data channel or
 * gRPC, or shards colocated in the workers) end with (a) exactly the parameters of a single-process reference that sums
 * the same slice gradients in rank order, and (b) the parameters of plain single-process
 * training with batch N*b, to float tolerance.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { JsonValue } from "@bufbuild/protobuf";
import { create, fromJson } from "@bufbuild/protobuf";
import { DatasetSpecSchema, JobSpecSchema } from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import { firstDifference, notClose } from "@trainfleet/testing/fleet/compare-parameters";
import { perRankReference, plainReference } from "@trainfleet/testing/fleet/reference-training";
import { runFleet } from "@trainfleet/testing/fleet/run-fleet";
import type { TrainingData } from "@trainfleet/worker";
import { defaultDataDirs, openTrainingData, selectBackend } from "@trainfleet/worker";
import { beforeAll, describe, expect, it } from "vitest";

const steps = 20;
const batch = 16;
let dataset: TrainingData;

beforeAll(async () => {
  await selectBackend("cpu", silentLogger);
  dataset = await openTrainingData(create(DatasetSpecSchema, { name: "fashion-mnist" }), {
    dataDirs: defaultDataDirs({ dataDir: process.env.TRAINFLEET_DATA_DIR, cacheHome: process.env.XDG_CACHE_HOME, home: process.env.HOME }),
  });
});

const optimizers = [
  ["sgd+momentum", ["--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9"]],
  ["adam", ["--optimizer", "adam", "--lr", "0.001"]],
] as const;

// Every data-plane option that keeps float32 on the wire must be exact.
const dataPlanes = {
  "2 dedicated shards over the TCP channel": ["--data-plane", "tcp", "--shards", "2"],
  "2 dedicated shards over gRPC": ["--data-plane", "grpc", "--shards", "2"],
  "shards colocated in the workers": ["--placement", "colocated"],
};

describe.each(Object.entries(dataPlanes).flatMap(([name, flags]) => [2, 3].map((workers) => [workers, name, flags] as const)))(
  "%i worker processes, %s",
  (workers, _name, planeFlags) => {
    it.each(optimizers)(
      `${steps} steps with %s: bitwise equal to the per-rank reference, allclose to batch N*b training`,
      async (_name, optimizerFlags) => {
        const fleet = await runFleet([
          ...planeFlags,
          "--workers",
          String(workers),
          "--hidden",
          "64",
          "--batch-size",
          String(batch),
          "--max-steps",
          String(steps),
          "--eval-samples",
          "200",
          "--backend",
          "cpu",
          "--seed",
          "7",
          // Small chunks so that every shard's range is several chunks: the keyed path is exercised.
          "--chunk-bytes",
          "65536",
          ...optimizerFlags,
        ]);
        expect(fleet.code, fleet.output).toBe(0);
        expect(fleet.description.version).toBe(steps);
        const spec = fromJson(JobSpecSchema, JSON.parse(readFileSync(join(fleet.folder, "spec.json"), "utf8")) as JsonValue);

        const perRank = await perRankReference(spec, dataset, workers, steps);
        expect(fleet.parameters.length).toBe(perRank.length);
        expect(firstDifference(fleet.parameters, perRank)).toBe(-1);

        const plain = await plainReference(spec, dataset, workers, steps);
        expect(notClose(fleet.parameters, plain, 1e-5, 1e-6)).toEqual([]);
        // And training moved the parameters: the comparison is not between two copies of the start.
        const initial = await perRankReference(spec, dataset, workers, 0);
        expect(notClose(fleet.parameters, initial, 1e-5, 1e-6).length).toBeGreaterThan(perRank.length / 2);
      },
    );
  },
);
