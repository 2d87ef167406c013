/** The shard's memory check at its assignment: a job too big for the machine is refused before anything is allocated. */
import { totalmem } from "node:os";
import { create } from "@bufbuild/protobuf";
import { Code, DatasetSpecSchema, ModelSpecSchema, OptimizerSpecSchema } from "@trainfleet/proto";
import { dataShape, parameterLayout } from "@trainfleet/spec";
import { describe, expect, it } from "vitest";
import { ParameterShard } from "../src/parameter-shard.js";
import { configureShard, shardMemoryBytes } from "../src/shard-assignment.js";
import type { ShardConfig } from "../src/shard-config.js";
import { createShardCore } from "../src/shard-core.js";
import { errorOf } from "./support.js";

const layout = parameterLayout(
  create(ModelSpecSchema, { kind: { case: "mlp", value: { hiddenUnits: [4] } } }),
  dataShape(create(DatasetSpecSchema, { name: "fashion-mnist" })),
);
const config = (change: Partial<ShardConfig> = {}): ShardConfig => ({
  jobId: "job-memory",
  generation: 1,
  worldSize: 2,
  range: { begin: 0, end: 1000 },
  chunkElements: 256,
  optimizer: create(OptimizerSpecSchema, {
    kind: { case: "adam", value: { learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } },
  }),
  layout,
  seed: 1,
  ...change,
});

describe("a shard's memory need", () => {
  it("counts parameters twice, each Adam state array twice, a contribution per rank and the initial values: 4 x 1000 x 9 bytes", () => {
    expect(shardMemoryBytes(config())).toBe(36_000);
    const sgd = create(OptimizerSpecSchema, { kind: { case: "sgd", value: { learningRate: 0.1, momentum: 0 } } });
    expect(shardMemoryBytes(config({ optimizer: sgd, worldSize: 4 }))).toBe(4 * 1000 * 7);
  });

  it("refuses an assignment that needs more than the machine's memory, naming both, and allocates nothing", () => {
    const core = createShardCore();
    const error = errorOf(() => configureShard(core, config(), 35_999));
    expect(error.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(error.message).toBe(
      'shard range [0, 1000) of job "job-memory" needs 0.0 GiB (parameters, optimizer state and 2 ranks\' contributions, double buffered) but this machine has 0.0 GiB of memory in all (os.totalmem); use more parameter-server shards, fewer workers or a smaller model',
    );
    expect([core.config, core.params.length, core.contributions.length]).toEqual([undefined, 0, 0]);
    configureShard(core, config(), 36_000);
    expect([core.params.length, core.contributions.length]).toEqual([1000, 2]);
  });

  it("refuses a larger world whose new rank buffers would not fit, keeping the generation it has", () => {
    const core = createShardCore();
    configureShard(core, config(), 36_000);
    const error = errorOf(() => configureShard(core, config({ generation: 2, worldSize: 3 }), 36_000 + 3_999));
    expect(error.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect([core.config?.generation, core.contributions.length]).toEqual([1, 2]);
  });

  it("refuses, against os.totalmem, a range of 4 x 10^11 values before allocating any of it", () => {
    const shard = new ParameterShard();
    const error = errorOf(() => shard.configure(config({ range: { begin: 0, end: 4e11 } })));
    expect(error.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(error.message).toContain(`but this machine has ${(totalmem() / 2 ** 30).toFixed(1)} GiB of memory in all (os.totalmem)`);
    expect(shard.config).toBeUndefined();
  });
});
