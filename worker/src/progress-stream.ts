/**
 * A worker's step reports to the coordinator, on one ReportProgress stream for as long as
 * the trainer lives: a message per step, written without waiting (the next step goes on).
 * A unary call per step cost the coordinator more than the step's own work (a new HTTP/2
 * stream, headers, and the caller's certificate read each time); on the stream each is a
 * data frame. A stream that breaks (the coordinator restarts, or refused a report) is
 * logged once and opened again with the next report; what it lost is handed out again in
 * the next generation, as with a lost unary report before.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ClientOf, CoordinatorService, ReportProgressRequestSchema } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { AsyncQueue } from "@trainfleet/runtime";

type Report = MessageInitShape<typeof ReportProgressRequestSchema>;

export class ProgressStream {
  #open: AsyncQueue<Report> | undefined;
  readonly #closed = new AbortController();

  constructor(
    private readonly coordinator: Pick<ClientOf<typeof CoordinatorService>, "reportProgress">,
    private readonly logger: Logger,
  ) {}

  send(report: Report): void {
    if (this.#closed.signal.aborted) return;
    (this.#open ??= this.#start()).push(report);
  }

  /** Ends the stream once what was sent is written. */
  close(): void {
    this.#closed.abort();
    this.#open?.close();
  }

  #start(): AsyncQueue<Report> {
    const queue = new AsyncQueue<Report>();
    this.coordinator.reportProgress(queue.read(this.#closed.signal)).then(
      () => this.#ended(queue),
      (error: unknown) => {
        this.#ended(queue);
        if (!this.#closed.signal.aborted)
          this.logger.warn({ err: String(error) }, "the progress report stream broke; the next report opens another");
      },
    );
    return queue;
  }

  #ended(queue: AsyncQueue<Report>): void {
    queue.close();
    if (this.#open === queue) this.#open = undefined;
  }
}
