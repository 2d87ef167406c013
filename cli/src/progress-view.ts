/**
 * The live view of a job's status: one redrawn line on a terminal, a plain line every few
 * seconds otherwise (so that CI logs stay short).
 */

import type { JobStatus } from "@trainfleet/proto";
import { JobPhase } from "@trainfleet/proto";

export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m${String(s).padStart(2, "0")}s` : `${s}s`;
}

export function progressLine(status: JobStatus, width = 24): string {
  if (status.phase === JobPhase.PENDING) return `waiting: ${status.message}`;
  if (status.phase === JobPhase.PAUSED) return `paused: ${status.message}`;
  const total = Math.max(1, status.totalSteps);
  const fraction = Math.min(1, status.step / total);
  const filled = Math.round(fraction * width);
  const bar = `${"#".repeat(filled)}${"-".repeat(width - filled)}`;
  const rate = status.samplesPerSecond;
  const remaining = status.totalSteps - status.step;
  const stepsPerSecond =
    status.step > 0 && status.startedUnixMs > 0n ? (status.step * 1000) / Math.max(1, Date.now() - Number(status.startedUnixMs)) : 0;
  // The coordinator's estimate (from its recent throughput) when it has one.
  const etaMs =
    status.etaSeconds !== undefined ? status.etaSeconds * 1000 : stepsPerSecond > 0 ? (remaining / stepsPerSecond) * 1000 : undefined;
  const eta = etaMs !== undefined ? ` ETA ${formatDuration(etaMs)}` : "";
  const loss = Number.isFinite(status.loss) ? status.loss.toFixed(4) : "-";
  const phase = status.phase === JobPhase.EVALUATING ? " evaluating" : status.reason === "Rescaling" ? " rescaling" : "";
  return `epoch ${status.epoch + 1}/${status.epochs} step ${status.step}/${status.totalSteps} [${bar}] ${(fraction * 100).toFixed(1)}% loss ${loss} ${Math.round(rate).toLocaleString("en-US")} samples/s${eta}${phase}`;
}

export interface ProgressView {
  update(status: JobStatus): void;
  /** Ends the live line so that later output starts on a fresh line. */
  end(): void;
}

export function createProgressView(out: NodeJS.WriteStream, intervalMs = 5_000): ProgressView {
  const tty = out.isTTY === true;
  let last = 0;
  let pending: string | undefined;
  let drawn = false;
  return {
    update(status) {
      const line = progressLine(status);
      if (tty) {
        const columns = out.columns ?? 120;
        out.write(`\r${line.slice(0, columns - 1).padEnd(Math.min(columns - 1, line.length + 2))}`);
        drawn = true;
        return;
      }
      pending = line;
      const now = Date.now();
      if (now - last >= intervalMs) {
        out.write(`${line}\n`);
        last = now;
        pending = undefined;
      }
    },
    end() {
      if (tty && drawn) out.write("\n");
      else if (pending !== undefined) out.write(`${pending}\n`);
    },
  };
}
