/**
 * Message-size limits shared by every gRPC server and client of trainfleet, and the
 * server-side bounds grpc-js supports (a client ignores them). What grpc-js has no option
 * for: a cap on connections per server or per peer (each role caps what it holds
 * elsewhere: the shard's data channel, the coordinator's watchers and member records), and a
 * maximum connection age is left unset on purpose: it would cut members' assignment streams,
 * which live as long as the job.
 */

/** Largest chunk a JobSpec may ask for; gradients and parameters travel in chunks. */
export const maxChunkBytes = 16 * 1024 * 1024;

/** Room for one chunk plus its message header. */
export const maxMessageBytes = maxChunkBytes + 64 * 1024;

/** Calls one connection may have open at once on a server: a member needs a handful; more is a flood. */
export const maxConcurrentStreams = 256;

/** A connection with no call open this long is closed by the server (a client reconnects on its next call). */
export const maxConnectionIdleMs = 600_000;

export const channelOptions: Record<string, number | string> = {
  "grpc.max_receive_message_length": maxMessageBytes,
  "grpc.max_send_message_length": maxMessageBytes,
  "grpc.keepalive_time_ms": 10_000,
  "grpc.keepalive_timeout_ms": 5_000,
  "grpc.max_concurrent_streams": maxConcurrentStreams,
  "grpc.max_connection_idle_ms": maxConnectionIdleMs,
};
