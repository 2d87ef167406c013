/**
 * The fleet helpers' clock: wall-clock milliseconds with sub-millisecond resolution, so that
 * marks taken here (a process spawned, a signal sent, an event received) line up with the
 * `time` field of the fleet's pino log lines (Date.now() in each process), and stay monotonic
 * in this process.
 */
export function now(): number {
  return performance.timeOrigin + performance.now();
}
