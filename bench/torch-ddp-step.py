"""torch DDP (gloo) training steps on Fashion-MNIST, the baseline of bench/src/training-step.ts.

Run by the benchmark as N processes of Debian's /usr/bin/python3 (python3-torch):
    torch-ddp-step.py RANK WORLD PORT MODEL(mlp|cnn) BATCH_PER_WORKER STEPS DATA_DIR
The same models as trainfleet's (MLP 784-256-10; CNN conv 8,16 3x3 + 2x2 max-pool, then the
output layer), Adam lr 1e-3, one thread per process. Rank 0 prints one JSON object with the
median step time and, for N > 1, the median time of the gradient all-reduce alone.
"""
import gzip
import json
import statistics
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn


def load(data_dir):
    with gzip.open(f"{data_dir}/train-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(f"{data_dir}/train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    return torch.from_numpy(images.astype(np.float32) / 255.0), torch.from_numpy(labels.astype(np.int64))


def model(kind):
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 10),
    )


def main():
    rank, world, port, kind = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    batch, steps, data_dir = int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
    torch.set_num_threads(1)
    torch.manual_seed(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    images, labels = load(data_dir)
    net = model(kind)
    ddp = nn.parallel.DistributedDataParallel(net) if world > 1 else net
    optimizer = torch.optim.Adam(ddp.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))
    step_times = []
    for step in range(steps):
        start_index = (step * batch * world + rank * batch) % (len(labels) - batch)
        index = order[start_index : start_index + batch]
        started = time.perf_counter()
        optimizer.zero_grad()
        loss_fn(ddp(images[index]), labels[index]).backward()
        optimizer.step()
        step_times.append(time.perf_counter() - started)
    # The all-reduce of a gradient-sized buffer alone: the communication part of a step.
    reduce_times = []
    if world > 1:
        flat = torch.ones(sum(p.numel() for p in net.parameters()))
        for _ in range(50):
            dist.barrier()
            started = time.perf_counter()
            dist.all_reduce(flat)
            reduce_times.append(time.perf_counter() - started)
    warm = step_times[steps // 10 :]
    if rank == 0:
        print(json.dumps({
            "stepMs": statistics.median(warm) * 1000,
            "allReduceMs": statistics.median(reduce_times) * 1000 if reduce_times else 0.0,
        }), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
