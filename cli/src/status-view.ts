/**
 * A job's status as text for `trainfleet status`: a readable summary (phase, progress,
 * loss curve, workers, shards), and the live view of --watch, which redraws that summary
 * in place on a terminal and writes a line per phase change (plus the progress line
 * every few seconds) otherwise.
 */

import type { JobStatus, SeriesPoint } from "@trainfleet/proto";
import { JobPhase, WorkerState } from "@trainfleet/proto";
import { createProgressView, formatDuration, progressLine } from "./progress-view.js";

const bars = "▁▂▃▄▅▆▇█";

/** The loss history as a sparkline of at most `width` characters (points averaged into columns). */
export function sparkline(points: readonly SeriesPoint[], width = 40): string {
  const values = points.map((p) => p.value).filter(Number.isFinite);
  if (values.length === 0) return "";
  const columns = Math.min(width, values.length);
  const means = Array.from({ length: columns }, (_, c) => {
    const slice = values.slice(Math.floor((c * values.length) / columns), Math.floor(((c + 1) * values.length) / columns));
    return slice.reduce((a, b) => a + b, 0) / slice.length;
  });
  const low = Math.min(...means);
  const high = Math.max(...means);
  return means.map((v) => bars[high === low ? 0 : Math.round(((v - low) / (high - low)) * (bars.length - 1))]).join("");
}

export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

const ago = (unixMs: bigint, now: number) => (unixMs > 0n ? `${formatDuration(now - Number(unixMs))} ago` : "never");
const phaseName = (phase: JobPhase) => JobPhase[phase] ?? String(phase);
const stateName = (state: WorkerState) => WorkerState[state] ?? String(state);

/** The readable summary of one status. */
export function statusLines(status: JobStatus, now = Date.now()): string[] {
  const lines = [`job ${status.jobId || "(none yet)"}: ${phaseName(status.phase)} (${status.reason}), generation ${status.generation}`];
  if (status.message !== "") lines.push(`  ${status.message}`);
  if (status.phase !== JobPhase.PENDING) lines.push(progressLine(status));
  const loss = status.lossHistory;
  if (loss.length > 0) {
    const first = loss[0]!;
    const last = loss[loss.length - 1]!;
    lines.push(`loss ${sparkline(loss)} ${first.value.toFixed(4)} (step ${first.step}) -> ${last.value.toFixed(4)} (step ${last.step})`);
  }
  if (status.testAccuracy !== undefined)
    lines.push(`test accuracy ${(status.testAccuracy * 100).toFixed(2)}% (test loss ${(status.testLoss ?? 0).toFixed(4)})`);
  if (status.lastCheckpointVersion !== undefined)
    lines.push(`last checkpoint: version ${status.lastCheckpointVersion}, ${ago(status.lastCheckpointUnixMs, now)}`);
  if (status.workers.length > 0) lines.push("workers:");
  for (const w of status.workers) {
    const timing =
      w.stepTimeMs > 0
        ? `  step ${w.stepTimeMs.toFixed(1)} ms (compute ${w.computeMs.toFixed(1)} + communication ${w.communicateMs.toFixed(1)})`
        : "";
    lines.push(
      `  ${w.workerId}  rank ${w.rank}  ${stateName(w.state)}  host ${w.host}  ${w.backend}  last step ${w.lastStep}${timing}  heartbeat ${ago(w.lastHeartbeatUnixMs, now)}`,
    );
    // Its own words before it exited (ReportFailure); the first line of them.
    if (w.lastErrorReason !== "")
      lines.push(`    failed: ${w.lastErrorReason}${w.lastErrorMessage === "" ? "" : `: ${w.lastErrorMessage.split("\n")[0]}`}`);
  }
  if (status.workerFailures > 0 && status.phase !== JobPhase.FAILED)
    lines.push(`worker failures since the last completed step: ${status.workerFailures} (the job fails at workers.replicas)`);
  if (status.parameterServers.length > 0) lines.push("parameter-server shards:");
  for (const ps of status.parameterServers) {
    const stats = ps.stats;
    const traffic =
      stats === undefined
        ? ""
        : `  version ${stats.version}  in ${formatBytes(Number(stats.bytesIn))}  out ${formatBytes(Number(stats.bytesOut))}  aggregation ${(stats.aggregationMs / 1000).toFixed(2)} s`;
    lines.push(
      `  ${ps.memberId}  ${stateName(ps.state)}  host ${ps.host}  ${ps.address}${traffic}  heartbeat ${ago(ps.lastHeartbeatUnixMs, now)}`,
    );
  }
  return lines;
}

export interface StatusView {
  update(status: JobStatus): void;
  /** Shows the final status. */
  end(status: JobStatus | undefined): void;
}

/** The live view of `trainfleet status --watch`. */
export function createStatusView(out: NodeJS.WriteStream, redrawMs = 100): StatusView {
  if (out.isTTY !== true) return plainView(out);
  let drawn = 0;
  let lastDraw = 0;
  let lastPhase: JobPhase | undefined;
  let shown: JobStatus | undefined;
  const draw = (status: JobStatus) => {
    // A terminal that does not say its width (columns 0) gets 120.
    const width = Math.max(20, (out.columns || 120) - 1);
    const lines = statusLines(status).map((line) => (line.length > width ? line.slice(0, width) : line));
    // Back to the first line of the previous drawing, clear to the end of the screen, redraw.
    out.write(`${drawn > 0 ? `\x1b[${drawn}F\x1b[J` : ""}${lines.join("\n")}\n`);
    drawn = lines.length;
    lastDraw = Date.now();
    shown = status;
  };
  return {
    update(status) {
      if (status.phase !== lastPhase || Date.now() - lastDraw >= redrawMs) draw(status);
      lastPhase = status.phase;
    },
    end(status) {
      if (status !== undefined && status !== shown) draw(status);
    },
  };
}

function plainView(out: NodeJS.WriteStream): StatusView {
  let progress = createProgressView(out);
  let lastPhase: JobPhase | undefined;
  return {
    update(status) {
      if (status.phase !== lastPhase) {
        progress.end();
        progress = createProgressView(out);
        out.write(`${phaseName(status.phase)} (${status.reason}): ${status.message}\n`);
        lastPhase = status.phase;
      } else if (status.phase === JobPhase.RUNNING) progress.update(status);
    },
    end(status) {
      progress.end();
      if (status !== undefined) out.write(`${statusLines(status).join("\n")}\n`);
    },
  };
}
