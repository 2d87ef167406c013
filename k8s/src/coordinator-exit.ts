/**
 * How a coordinator tells the operator how its job ended, in a way that outlives its status API
 * (the pod has ended, or the operator was away while it lingered). Both signs stay in the pod's
 * status, containerStatuses[].state.terminated, for as long as the pod exists:
 *
 * - the exit code: 0 when the job succeeded, jobFailedExitCode when the coordinator failed the
 *   job itself (a policy gave up: a non-finite loss, bad data, the step deadline, too few
 *   workers), anything else when the coordinator failed (an error, a signal, the OOM killer).
 *   Only that last is a crash, which the operator restarts against runPolicy.backoffLimit: a
 *   coordinator started again after its job ended would start the job afresh.
 * - the termination message: the coordinator writes its final word (TerminationMessage, one JSON
 *   object) to the container's terminationMessagePath, /dev/termination-log, a file the kubelet
 *   mounts into every container (writable under a read-only root filesystem), which reports at
 *   most its first 4096 bytes as `message`.
 *
 * The exit code decides; the message only gives the reason. A failed job whose message is
 * missing still fails, with what the kubelet quoted instead (FallbackToLogsOnError: the log's tail).
 * No client-node here: the CLI's coordinator imports this through @trainfleet/k8s/resource.
 */

/** The coordinator failed the job on purpose (not 1, which any error exits with; not one Node.js uses itself, 1 to 14). */
export const jobFailedExitCode = 20;

/** Kubernetes' default terminationMessagePath, which every container gets. */
export const defaultTerminationMessagePath = "/dev/termination-log";

/** The most of a termination message the kubelet reports. */
export const terminationMessageBytes = 4096;

/** What the coordinator says last: the job's outcome with its reason and message. */
export interface FinalWord {
  phase: "Succeeded" | "Failed";
  reason: string;
  message: string;
}

/** Marks the message as a coordinator's final word (a log line that ends a crashed container's message is none). */
const kind = "trainfleet.dev/job-end";

/** The termination message for `word`: one JSON object of at most 4096 bytes (the message is shortened to fit). */
export function terminationMessage(word: FinalWord): string {
  const text = (message: string) => JSON.stringify({ kind, phase: word.phase, reason: word.reason.slice(0, 256), message });
  const fits = (message: string) => Buffer.byteLength(text(message), "utf8") <= terminationMessageBytes;
  if (fits(word.message)) return text(word.message);
  // The longest start of the message (in code points) that fits with an ellipsis.
  const points = Array.from(word.message);
  let [low, high] = [0, points.length];
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (fits(`${points.slice(0, middle).join("")}…`)) low = middle;
    else high = middle - 1;
  }
  return text(`${points.slice(0, low).join("")}…`);
}

/** The final word a terminated container's message holds, if it is one. */
export function finalWordIn(text: string | undefined): FinalWord | undefined {
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.trim());
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const fields = parsed as Record<string, unknown>;
  const { phase, reason, message } = fields;
  if (fields.kind !== kind || (phase !== "Succeeded" && phase !== "Failed")) return undefined;
  return { phase, reason: typeof reason === "string" ? reason : "", message: typeof message === "string" ? message : "" };
}
