/**
 * The narrow logger every library takes; pino satisfies it and is created only in the
 * cli's main. Fields: jobId, workerId, rank, step, psShard, generation.
 */
export interface Logger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  child(fields: object): Logger;
}

/** A logger that drops everything: the default in tests and library use. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
