/**
 * @trainfleet/coordinator: the coordinator of one job (job, membership, generations, steps, checkpoints, status, events, state, server).
 * It may import proto, spec, runtime and dataplane; other packages import only what is re-exported here, by name.
 */
export type { LoadedCheckpoint } from "./checkpoints/checkpoint-store.js";
export { loadCheckpoint } from "./checkpoints/checkpoint-store.js";
export type { BusMessage } from "./events/event-subjects.js";
export { decodeBusMessage, jobsStreamName } from "./events/event-subjects.js";
export { createNatsEventBus } from "./events/nats-event-bus.js";
export { followJobEvents } from "./events/nats-event-follower.js";
export { Coordinator } from "./job/coordinator.js";
export { startCoordinatorServer } from "./server/coordinator-server.js";
export { runCoordinator } from "./server/run-coordinator.js";
export { startStatusHttpServer } from "./status/status-http-server.js";
export type { EpochOrder } from "./steps/epoch-order.js";
export type { PlannedStep } from "./steps/ledger.js";
export { SampleCursor } from "./steps/sample-cursor.js";
export type { SampleOrder } from "./steps/sample-order.js";
export { epochOrder, sampleOrderOf } from "./steps/sample-order.js";
