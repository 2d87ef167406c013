/**
 * Over mutual TLS a shard takes rank r's chunks only from the worker the coordinator gave
 * rank r to in this generation (ShardAssignment.rank_identities): another worker, a
 * parameter server or an operator pushing as the rank is refused PERMISSION_DENIED before
 * any byte lands, and the shard is as it was. An in-process link (no peer) and a plaintext
 * job (no identities) are not checked.
 */
import { create } from "@bufbuild/protobuf";
import type { PeerIdentity } from "@trainfleet/proto";
import { Code, ModelSpecSchema, OptimizerSpecSchema, PushRequestSchema } from "@trainfleet/proto";
import { dataShape, parameterLayout } from "@trainfleet/spec";
import { describe, expect, it } from "vitest";
import { ParameterShard } from "../src/parameter-shard.js";
import type { ShardConfig } from "../src/shard-config.js";
import { bits, errorOf } from "./support.js";

const layout = parameterLayout(
  create(ModelSpecSchema, { kind: { case: "mlp", value: { hiddenUnits: [2] } } }),
  dataShape({ name: "fashion-mnist", manifest: "" }),
);
const range = { begin: 0, end: 64 };
const sgd = create(OptimizerSpecSchema, { kind: { case: "sgd", value: { learningRate: 0.1 } } });

function openShard(rankIdentities?: string[]): ParameterShard {
  const config: ShardConfig = {
    jobId: "j",
    generation: 1,
    worldSize: 2,
    range,
    chunkElements: 32,
    optimizer: sgd,
    layout,
    seed: 1,
    rankIdentities,
  };
  const shard = new ParameterShard();
  shard.configure(config);
  shard.openGeneration(1, 0);
  return shard;
}

const peer = (role: PeerIdentity["role"], name: string): PeerIdentity => ({ jobId: "j", role, name });

/** Rank's whole push of ones, as `from`. */
function push(shard: ParameterShard, rank: number, from: PeerIdentity | undefined): void {
  const transaction = shard.beginPush(from);
  try {
    for (const offset of [0, 32]) {
      transaction.add(
        create(PushRequestSchema, {
          jobId: "j",
          generation: 1,
          step: 0,
          rank,
          offset: BigInt(offset),
          data: new Uint8Array(new Float32Array(32).fill(1).buffer),
        }),
      );
    }
  } catch (error) {
    transaction.abort();
    throw error;
  }
  transaction.commit();
}

describe("who may push as a rank", () => {
  it("the worker the generation gave the rank to, and no one else", () => {
    const shard = openShard(["worker-4", "worker-7"]);
    const before = bits(shard.parameters);
    for (const [rank, from] of [
      [0, peer("worker", "worker-7")],
      [1, peer("worker", "worker-4")],
      [0, peer("parameter-server", "worker-4")],
      [1, peer("operator", "worker-7")],
    ] as const) {
      const error = errorOf(() => push(shard, rank, from));
      expect([error.code, error.field]).toEqual([Code.PERMISSION_DENIED, "rank"]);
      expect(error.message).toBe(
        `rank: rank ${rank} of generation 1 is ${rank === 0 ? "worker-4" : "worker-7"}'s; ${from.role} ${from.name} may not push as it`,
      );
    }
    expect(shard.version).toBe(0);
    expect(bits(shard.parameters)).toEqual(before);
    push(shard, 0, peer("worker", "worker-4"));
    push(shard, 1, peer("worker", "worker-7"));
    expect(shard.version).toBe(1);
  });

  it("takes an in-process push (no peer), and any push of a plaintext job", () => {
    const linked = openShard(["worker-4", "worker-7"]);
    push(linked, 0, undefined);
    push(linked, 1, peer("worker", "worker-7"));
    expect(linked.version).toBe(1);
    const plaintext = openShard();
    push(plaintext, 0, peer("worker", "anyone"));
    push(plaintext, 1, undefined);
    expect(plaintext.version).toBe(1);
  });
});
