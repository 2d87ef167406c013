/**
 * Benchmark child: one dedicated parameter-server shard. argv: parameterCount shardIndex
 * shards worldSize chunkBytes. Reports its addresses, then its peak RSS when told to stop.
 */
import { peakRssBytes, startBenchShard } from "./bench-shard-setup.js";

const [parameterCount, shardIndex, shards, worldSize, chunkBytes] = process.argv.slice(2).map(Number) as [
  number,
  number,
  number,
  number,
  number,
];
const shard = await startBenchShard(parameterCount, shardIndex, shards, worldSize, chunkBytes);
process.send!({ address: shard.server.address, dataAddress: shard.data.address });
process.on("message", () => {
  process.send!({ rssBytes: peakRssBytes() }, () => void shard.close().then(() => process.exit(0)));
});
