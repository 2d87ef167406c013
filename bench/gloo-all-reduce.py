"""torch.distributed gloo all_reduce timings, the baseline of bench/src/all-reduce.ts.

Run by the benchmark as N processes of Debian's /usr/bin/python3 (python3-torch):
    gloo-all-reduce.py RANK WORLD PORT SIZES_BYTES(comma) SITTINGS ROUNDS(comma)
Each sitting times ROUNDS all_reduce calls of float32 after a barrier; rank 0 prints one
JSON object: {size: [median seconds of each sitting]}, using the slowest rank's time.
"""
import json
import statistics
import sys
import time

import torch
import torch.distributed as dist


def main():
    rank, world, port = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    sizes = [int(s) for s in sys.argv[4].split(",")]
    sittings = int(sys.argv[5])
    rounds = [int(r) for r in sys.argv[6].split(",")]
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    results = {}
    for size, count in zip(sizes, rounds):
        tensor = torch.ones(size // 4, dtype=torch.float32)
        dist.all_reduce(tensor)  # warm-up: connections, buffers
        medians = []
        for _ in range(sittings):
            times = []
            for _ in range(count):
                dist.barrier()
                start = time.perf_counter()
                dist.all_reduce(tensor)
                elapsed = torch.tensor([time.perf_counter() - start], dtype=torch.float64)
                dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
                times.append(elapsed.item())
            medians.append(statistics.median(times))
        results[str(size)] = medians
    if rank == 0:
        print(json.dumps(results), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
