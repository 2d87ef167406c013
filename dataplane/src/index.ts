/**
 * @trainfleet/dataplane: both ends of the gradient and parameter transport (TCP, gRPC, in-process), and the ShardPort a shard implements to be served.
 * It may import proto, spec, kernels and runtime; other packages import only what is re-exported here, by name.
 */
export {
  decodeBfloat16,
  decodeBfloat16Js,
  decodeFloat16,
  decodeFloat16Js,
  encodeBfloat16,
  encodeBfloat16Js,
  encodeFloat16,
  encodeFloat16Js,
} from "./codec/half-precision.js";
export { float32Bytes } from "./codec/tensor-codec.js";
export { dataPlaneRefusal, dataPlaneRoles, pushRoles, shardPeer } from "./data-plane-access.js";
export { startShardServer } from "./grpc-shard-server.js";
export { createLocalShardLink } from "./local-shard-link.js";
export type { ParameterClient, ParameterClientOptions, ShardEndpoint } from "./parameter-client.js";
export { createParameterClient, shardEndpoint } from "./parameter-client.js";
export type { ChunkHeader, PushResult, PushTransaction, ShardStats } from "./push-transaction.js";
export type { ShardLink } from "./shard-link.js";
export type { ServedVersion, ShardPort, ShardPortConfig } from "./shard-port.js";
export type { DataChannelLimitOptions } from "./tcp/data-channel-limits.js";
export { FrameParser } from "./tcp/frame-parser.js";
export { errorFromFrame, frame } from "./tcp/frame-writer.js";
export type { FrameHeader } from "./tcp/frames.js";
export { FrameType } from "./tcp/frames.js";
export type { DataServer } from "./tcp/tcp-data-server.js";
export { startDataServer } from "./tcp/tcp-data-server.js";
