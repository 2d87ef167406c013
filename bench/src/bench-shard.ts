/**
 * Benchmark child: one dedicated parameter-server shard. argv: parameterCount shardIndex
 * shards worldSize chunkBytes [tlsDir] (mutual TLS as ps-{shardIndex} with the credentials
 * there; plaintext when absent or ""). Reports its addresses, then its peak RSS when told to stop.
 */
import { benchSecurity, peakRssBytes, startBenchShard } from "./bench-shard-setup.js";

const [parameterCount, shardIndex, shards, worldSize, chunkBytes] = process.argv.slice(2, 7).map(Number) as [
  number,
  number,
  number,
  number,
  number,
];
const security = await benchSecurity(process.argv[7] ?? "", `ps-${shardIndex}`);
const shard = await startBenchShard(parameterCount, shardIndex, shards, worldSize, chunkBytes, security);
process.send!({ address: shard.server.address, dataAddress: shard.data.address });
process.on("message", () => {
  process.send!({ rssBytes: peakRssBytes() }, () => void shard.close().then(() => process.exit(0)));
});
