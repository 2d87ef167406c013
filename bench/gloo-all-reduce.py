"""torch.distributed gloo all_reduce timings, the baseline of bench/src/all-reduce.ts.

Run by the benchmark as N processes of Debian's /usr/bin/python3 (python3-torch):
    gloo-all-reduce.py RANK WORLD PORT SIZES_BYTES(comma) SITTINGS ROUNDS(comma) [STEP]
Each sitting times ROUNDS all_reduce calls of float32 after a barrier; rank 0 prints one
JSON object: {size: [median seconds of each sitting]}, using the slowest rank's time.
STEP "sgd-momentum" times what a DDP step does with the reduced gradient instead: the
all_reduce, the average (a division by WORLD) and torch's SGD step with momentum 0.9 on
parameters of the same size, the optimizer a parameter-server round of the benchmark applies.
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
    step = sys.argv[7] if len(sys.argv) > 7 else "none"
    if step not in ("none", "sgd-momentum"):
        sys.exit(f"STEP {step}: use none or sgd-momentum")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    results = {}
    for size, count in zip(sizes, rounds):
        tensor = torch.ones(size // 4, dtype=torch.float32)
        parameters = torch.nn.Parameter(torch.zeros(size // 4, dtype=torch.float32))
        optimizer = torch.optim.SGD([parameters], lr=0.01, momentum=0.9)

        def one_round():
            dist.all_reduce(tensor)
            if step == "sgd-momentum":
                parameters.grad = tensor.div_(world)
                optimizer.step()

        one_round()  # warm-up: connections, buffers, the momentum buffer
        medians = []
        for _ in range(sittings):
            times = []
            for _ in range(count):
                dist.barrier()
                start = time.perf_counter()
                one_round()
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
