/** Message-size limits shared by every gRPC server and client of trainfleet. */

/** Largest chunk a JobSpec may ask for; gradients and parameters travel in chunks. */
export const maxChunkBytes = 16 * 1024 * 1024;

/** Room for one chunk plus its message header. */
export const maxMessageBytes = maxChunkBytes + 64 * 1024;

export const channelOptions: Record<string, number | string> = {
  "grpc.max_receive_message_length": maxMessageBytes,
  "grpc.max_send_message_length": maxMessageBytes,
  "grpc.keepalive_time_ms": 10_000,
  "grpc.keepalive_timeout_ms": 5_000,
};
