/**
 * The plan of a job, as a pure function: the parameter layout, which shard owns which
 * range, the global batch and how many steps the job takes. None of it depends on how
 * many workers there are at a time (the global batch is fixed: see WorkersSpec).
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ShardRangeSchema } from "@trainfleet/proto";
import type { DataShape, ParameterLayout, ResolvedJobSpec } from "@trainfleet/spec";
import { dataShape, parameterLayout, shardRanges } from "@trainfleet/spec";
import { stepsPerEpoch } from "../steps/ledger.js";
import type { SampleOrder } from "../steps/sample-order.js";
import { sampleOrderOf } from "../steps/sample-order.js";

export interface JobPlan {
  data: DataShape;
  layout: ParameterLayout;
  shardRanges: Array<MessageInitShape<typeof ShardRangeSchema>>;
  /** Samples per step, over all ranks: workers.replicas x batch_size_per_worker. */
  globalBatchSize: number;
  stepsPerEpoch: number;
  totalSteps: number;
  /** How each epoch orders the samples (training.shuffle). */
  sampleOrder: SampleOrder;
}

export interface ShardAddresses {
  address: string;
  dataAddress: string;
}

/** `shards[i]` is where shard i listens. */
export function planJob(spec: ResolvedJobSpec, shards: readonly ShardAddresses[]): JobPlan {
  const data = dataShape(spec.dataset!);
  const layout = parameterLayout(spec.model!, data);
  const ranges = shardRanges(layout.parameterCount, shards.length).map((range, index) => ({
    index,
    address: shards[index]!.address,
    dataAddress: shards[index]!.dataAddress,
    begin: BigInt(range.begin),
    end: BigInt(range.end),
  }));
  const training = spec.training!;
  const globalBatchSize = spec.workers!.replicas * training.batchSizePerWorker;
  const perEpoch = stepsPerEpoch(data.trainRecords, globalBatchSize);
  const fullSteps = training.epochs * perEpoch;
  const totalSteps = training.maxSteps > 0 ? Math.min(training.maxSteps, fullSteps) : fullSteps;
  return { data, layout, shardRanges: ranges, globalBatchSize, stepsPerEpoch: perEpoch, totalSteps, sampleOrder: sampleOrderOf(spec) };
}
