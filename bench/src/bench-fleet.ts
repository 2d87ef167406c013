/**
 * A local fleet of `trainfleet` processes started all at once, as a restarted job's would
 * be: the coordinator at a fixed address, the parameter-server shards and the workers at
 * the same moment (they retry registering until it listens). The coordinator's status event
 * stream is read from when its HTTP API listens. Workers can be added later; any process
 * can be signalled. A benchmark that restarts the fleet starts a new one with `--resume`,
 * at the same address.
 */
import { join } from "node:path";
import { FleetProcess } from "@trainfleet/testing/fleet/fleet-process";
import { StatusEvents } from "@trainfleet/testing/fleet/status-events";

export interface FleetOptions {
  /** Names the log files of this fleet's processes (fleet-0.coordinator.log, ...). */
  index: number;
  logFolder: string;
  /** host:port of the coordinator's gRPC server. */
  address: string;
  coordinatorArgs: string[];
  shards: number;
  workers: number;
  workerArgs: string[];
  /**
   * Each member's transport flags, by its name (coordinator, ps-N, worker-N): its --tls-*
   * files for mutual TLS. Without it every member gets --insecure: plaintext, on purpose.
   */
  securityArgs?: (member: string) => string[];
}

export class BenchFleet {
  readonly coordinator: FleetProcess;
  readonly shards: FleetProcess[] = [];
  /** The workers that have not been killed, oldest first. */
  readonly workers: FleetProcess[] = [];
  /** Every process this fleet started, killed ones too. */
  readonly started: FleetProcess[] = [];
  #status: StatusEvents | undefined;
  #workerCount = 0;

  private constructor(readonly options: FleetOptions) {
    this.coordinator = this.#start("coordinator", [
      "coordinator",
      ...this.#securityArgs("coordinator"),
      "--listen",
      options.address,
      "--http-listen",
      "127.0.0.1:0",
      ...options.coordinatorArgs,
    ]);
    for (let shard = 0; shard < options.shards; shard++)
      this.shards.push(
        this.#start(`ps-${shard}`, [
          "ps",
          ...this.#securityArgs(`ps-${shard}`),
          ...["--coordinator", options.address, "--shard-index", String(shard)],
        ]),
      );
    for (let i = 0; i < options.workers; i++) this.addWorker();
  }

  /** Starts every process, then opens the status stream; `onStarted` sees each process (to clean up after a failure). */
  static async start(options: FleetOptions, onStarted: (member: FleetProcess) => void): Promise<BenchFleet> {
    const fleet = new BenchFleet(options);
    fleet.started.forEach(onStarted);
    const url = (await fleet.coordinator.log("status API listening")).url as string;
    fleet.#status = await StatusEvents.open(`${url}/watch`);
    return fleet;
  }

  get status(): StatusEvents {
    return this.#status!;
  }

  addWorker(extraArgs: string[] = []): FleetProcess {
    const name = `worker-${this.#workerCount++}`;
    const member = this.#start(name, [
      "worker",
      ...this.#securityArgs(name),
      "--coordinator",
      this.options.address,
      ...this.options.workerArgs,
      ...extraArgs,
    ]);
    this.workers.push(member);
    return member;
  }

  /** Resolves when every process of the fleet has exited. */
  async exited(): Promise<void> {
    await Promise.all(this.started.map((member) => member.exited));
  }

  #securityArgs(member: string): string[] {
    return this.options.securityArgs?.(member) ?? ["--insecure"];
  }

  #start(name: string, args: string[]): FleetProcess {
    const fullName = `fleet-${this.options.index}.${name}`;
    const member = new FleetProcess(fullName, args, [], { logFile: join(this.options.logFolder, `${fullName}.log`) });
    this.started.push(member);
    return member;
  }
}
