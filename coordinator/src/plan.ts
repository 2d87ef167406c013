/**
 * The plan of a job for one generation, as a pure function: the parameter layout, which
 * shard owns which range, how many steps the job takes. Ranks are the workers' order.
 */
import { datasetShape, parameterLayout, shardRanges } from "@trainfleet/proto";
import type { InputShape, JobSpec, ParameterLayout, ShardRangeSchema } from "@trainfleet/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { stepsPerEpoch } from "./ledger.js";

export interface JobPlan {
  input: InputShape;
  layout: ParameterLayout;
  shardRanges: Array<MessageInitShape<typeof ShardRangeSchema>>;
  worldSize: number;
  stepsPerEpoch: number;
  totalSteps: number;
}

export interface ShardAddresses {
  address: string;
  dataAddress: string;
}

/** `shards[i]` is where shard i listens. */
export function planJob(spec: JobSpec, shards: readonly ShardAddresses[], worldSize: number): JobPlan {
  const input = datasetShape(spec.dataset!.name);
  const layout = parameterLayout(spec.model!, input);
  const ranges = shardRanges(layout.parameterCount, shards.length).map((range, index) => ({
    index,
    address: shards[index]!.address,
    dataAddress: shards[index]!.dataAddress,
    begin: BigInt(range.begin),
    end: BigInt(range.end),
  }));
  const training = spec.training!;
  const perEpoch = stepsPerEpoch(input.trainSamples, worldSize * training.batchSizePerWorker);
  const fullSteps = training.epochs * perEpoch;
  const totalSteps = training.maxSteps > 0 ? Math.min(training.maxSteps, fullSteps) : fullSteps;
  return { input, layout, shardRanges: ranges, worldSize, stepsPerEpoch: perEpoch, totalSteps };
}
