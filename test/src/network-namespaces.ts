/**
 * Several hosts on one machine, for tests that need a real network between processes:
 * each host is a Linux network namespace with one address, wired by a veth pair to a
 * bridge that lives in a switch namespace of its own. Cutting a host's bridge-side port
 * is a partition: packets vanish silently, as on a real network, whereas taking the
 * host-side link down would give an instant ENETUNREACH. Nothing touches the root
 * namespace: the addresses exist only inside namespaces made here. Needs root
 * (CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2; without them create() throws saying so.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

/** One host: a namespace with `address` on its interface eth0, plugged into the switch at `port`. */
export interface Host {
  name: string;
  namespace: string;
  address: string;
  /** The bridge-side end of its veth pair, in the switch namespace. */
  port: string;
}

/** Namespace names start with this, then the pid of the process that made them. */
const prefix = "tfnet-";
const subnet = "10.233.1";

async function ip(...args: string[]): Promise<string> {
  try {
    return (await run("ip", args, { encoding: "utf8" })).stdout;
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    const why = failure.code === "ENOENT" ? "the `ip` command (iproute2) is not installed" : (failure.stderr?.trim() || failure.message);
    throw new Error(`ip ${args.join(" ")}: ${why}`, { cause: error });
  }
}

export class SwitchedNetwork {
  readonly #hosts = new Map<string, Host>();
  /** Every namespace made so far, the switch last, so that destroy() removes all of them. */
  readonly #namespaces: string[] = [];

  private constructor(readonly switchNamespace: string) {}

  /**
   * Makes the switch and one host per name (addresses 10.233.1.1, .2, ... /24, in order),
   * and checks that every host reaches the others' addresses. Throws, having removed what
   * it made, when namespaces cannot be made here (the message says why).
   */
  static async create(hostNames: readonly string[]): Promise<SwitchedNetwork> {
    await removeLeftovers();
    const tag = `${prefix}${process.pid}`;
    const network = new SwitchedNetwork(`${tag}-sw`);
    try {
      try {
        await ip("netns", "add", network.switchNamespace);
      } catch (error) {
        throw new Error(
          `network namespaces cannot be made here, so this multi-host test cannot run (it needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN, and iproute2): ${(error as Error).message}`,
          { cause: error },
        );
      }
      network.#namespaces.push(network.switchNamespace);
      const sw = network.switchNamespace;
      await ip("-n", sw, "link", "add", "br0", "type", "bridge");
      await ip("-n", sw, "link", "set", "br0", "up");
      for (const [i, name] of hostNames.entries()) {
        const host: Host = { name, namespace: `${tag}-${name}`, address: `${subnet}.${i + 1}`, port: `port-${name}`.slice(0, 15) };
        await ip("netns", "add", host.namespace);
        network.#namespaces.unshift(host.namespace);
        // Both ends are made inside our namespaces, so their names cannot clash with the root namespace's.
        await ip("-n", sw, "link", "add", host.port, "type", "veth", "peer", "name", "eth0", "netns", host.namespace);
        await ip("-n", sw, "link", "set", host.port, "master", "br0", "up");
        await ip("-n", host.namespace, "addr", "add", `${host.address}/24`, "dev", "eth0");
        await ip("-n", host.namespace, "link", "set", "eth0", "up");
        await ip("-n", host.namespace, "link", "set", "lo", "up");
        network.#hosts.set(name, host);
      }
      await network.#checkReachable();
      return network;
    } catch (error) {
      await network.destroy();
      throw error;
    }
  }

  host(name: string): Host {
    const host = this.#hosts.get(name);
    if (host === undefined) throw new Error(`no host "${name}" in this network`);
    return host;
  }

  /** The command prefix that runs a program inside the host's namespace. */
  exec(name: string): string[] {
    return ["ip", "netns", "exec", this.host(name).namespace];
  }

  /** Partitions the host: its bridge-side port goes down, and whatever it sends or is sent is dropped. */
  async cut(name: string): Promise<void> {
    await ip("-n", this.switchNamespace, "link", "set", this.host(name).port, "down");
  }

  async restore(name: string): Promise<void> {
    await ip("-n", this.switchNamespace, "link", "set", this.host(name).port, "up");
  }

  /** Removes every namespace made (their veth pairs and the bridge go with them). Safe to call twice. */
  async destroy(): Promise<void> {
    const failures: string[] = [];
    for (const namespace of this.#namespaces.splice(0)) {
      await ip("netns", "delete", namespace).catch((error: Error) => failures.push(error.message));
    }
    if (failures.length > 0) throw new Error(`could not remove every network namespace:\n${failures.join("\n")}`);
  }

  /** Each host opens a TCP connection to every other (a ping needs a binary that may be absent): the wiring works. */
  async #checkReachable(): Promise<void> {
    const hosts = [...this.#hosts.values()];
    const probe = `const s = require("node:net").connect({ host: process.argv[1], port: 9, timeout: 3000 });
s.on("connect", () => process.exit(0)); s.on("error", (e) => process.exit(e.code === "ECONNREFUSED" ? 0 : 1)); s.on("timeout", () => process.exit(2));`;
    for (const from of hosts) {
      for (const to of hosts) {
        if (from === to) continue;
        // A refused connection proves reachability: the other host's kernel answered.
        await run("ip", ["netns", "exec", from.namespace, process.execPath, "-e", probe, to.address]).catch((error: unknown) => {
          throw new Error(`host ${from.name} (${from.address}) cannot reach host ${to.name} (${to.address}) through the bridge`, { cause: error });
        });
      }
    }
  }
}

/** Namespaces of earlier runs whose process is gone (a run killed before its clean-up). */
async function removeLeftovers(): Promise<void> {
  let listed: string;
  try {
    listed = await ip("netns", "list");
  } catch {
    return; // create() reports what is wrong
  }
  for (const line of listed.split("\n")) {
    const match = new RegExp(`^(${prefix}(\\d+)-\\S+)`).exec(line);
    if (match === null || alive(Number(match[2]))) continue;
    await ip("netns", "delete", match[1]!).catch(() => {});
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
