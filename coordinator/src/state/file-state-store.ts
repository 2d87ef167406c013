/**
 * The coordinator's state in a local file, for a coordinator without NATS: JSON written to
 * a temporary file, fsynced, renamed over the old one (proto's writeAtomically), so that a
 * coordinator killed mid-save leaves the old record or the new one.
 */
import { mkdir, readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { writeAtomically } from "@trainfleet/runtime";
import type { CoordinatorState } from "./coordinator-state.js";
import { parseCoordinatorState } from "./coordinator-state.js";
import type { StateStore } from "./state-store.js";
import { encodeState, SerialTasks } from "./state-store.js";

export function fileStateStore(path: string): StateStore {
  return new FileStateStore(resolve(path));
}

class FileStateStore implements StateStore {
  readonly description: string;
  readonly #path: string;
  readonly #tasks: SerialTasks;
  #folderMade = false;

  constructor(path: string) {
    this.#path = path;
    this.description = `file ${path}`;
    this.#tasks = new SerialTasks(this.description);
  }

  load(): Promise<CoordinatorState | undefined> {
    return this.#tasks.run(async () => {
      let text: string;
      try {
        text = await readFile(this.#path, "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw new TrainfleetError(
          Code.FAILED_PRECONDITION,
          `cannot read the coordinator state ${this.description}: ${TrainfleetError.from(error).message}`,
          { cause: error },
        );
      }
      return parseCoordinatorState(text, this.description);
    });
  }

  save(state: CoordinatorState): Promise<void> {
    return this.#tasks.run(async () => {
      const bytes = encodeState(state, this.description);
      try {
        // Once: the folder does not go away while the coordinator runs.
        if (!this.#folderMade) await mkdir(dirname(this.#path), { recursive: true });
        this.#folderMade = true;
        await writeAtomically(this.#path, bytes);
      } catch (error) {
        throw new TrainfleetError(
          Code.UNAVAILABLE,
          `cannot save the coordinator state to ${this.description}: ${TrainfleetError.from(error).message}`,
          { cause: error },
        );
      }
    });
  }

  close(): Promise<void> {
    return this.#tasks.close();
  }
}
