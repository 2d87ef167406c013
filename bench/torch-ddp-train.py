"""torch DDP (gloo) training to a test accuracy: the torch contender of bench/src/time-to-accuracy.ts.

Run by the benchmark as N processes of Debian's /usr/bin/python3 (python3-torch), one thread each:
    torch-ddp-train.py --blas
        prints, as one JSON object, the BLAS library this torch computes with, and exits
    torch-ddp-train.py --rank R --world N --port P --data-dir DIR --epochs E --batch-per-worker B
                       --hidden 256 --lr 0.001 --beta1 0.9 --beta2 0.999 --epsilon 1e-7 --seed 1
        trains the MLP (784-HIDDEN...-10, ReLU, Glorot-uniform weights and zero biases as tf.js's
        Dense layers start) with Adam on the Fashion-MNIST IDX files in DIR, each step one global
        batch of N x B samples of a per-epoch shuffle split over the ranks (the last step of an
        epoch takes what is left, as trainfleet's does), then evaluates the 10,000 test samples
        split over the ranks; rank 0 prints one JSON object: test accuracy, steps, BLAS.

Debian's python3-torch calls whatever libblas.so.3 the alternatives system points to: the
reference BLAS unless an optimized one (libopenblas0-pthread) is installed, and matmuls then
run about 40x slower. A comparison on it would measure the BLAS, so training refuses (exit 3).
"""
import argparse
import gzip
import json
import re
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

REFUSED = 3


def blas():
    """The BLAS library mapped into this process (torch opens libblas.so.3 through the alternatives link)."""
    torch.ones(64, 64) @ torch.ones(64, 64)  # makes sure the BLAS is loaded, however torch links it
    with open("/proc/self/maps") as maps:
        paths = sorted({line.split()[-1] for line in maps if re.search(r"/lib[^/]*(blas|mkl|blis)[^/]*\.so", line)})
    # The file that answers to libblas.so.3 provides sgemm; others mapped beside it (OpenBLAS
    # pulled in by LAPACK, say) do not, so it decides.
    blas_so = [path for path in paths if re.search(r"/libblas\.so", path)]
    decisive = blas_so or paths
    if any(re.search(r"/blas/libblas\.so", path) for path in blas_so):
        name = "reference BLAS (netlib)"
    elif any("openblas" in path for path in decisive):
        name = "OpenBLAS"
    elif any("mkl" in path for path in decisive):
        name = "MKL"
    elif any("blis" in path for path in decisive):
        name = "BLIS"
    else:
        name = "unknown"
    return {"name": name, "reference": name == "reference BLAS (netlib)", "libraries": paths, "torch": torch.__version__}


def load(data_dir, prefix):
    with gzip.open(f"{data_dir}/{prefix}-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28 * 28)
    with gzip.open(f"{data_dir}/{prefix}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    return torch.from_numpy(images.astype(np.float32) / 255.0), torch.from_numpy(labels.astype(np.int64))


def mlp(hidden):
    layers = []
    width = 28 * 28
    for units in hidden:
        layers += [nn.Linear(width, units), nn.ReLU()]
        width = units
    layers.append(nn.Linear(width, 10))
    net = nn.Sequential(*layers)
    for layer in net:
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return net


def parse():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blas", action="store_true", help="print the BLAS in use as JSON and exit")
    for name, kind in [("rank", int), ("world", int), ("port", int), ("data-dir", str), ("epochs", int), ("batch-per-worker", int),
                       ("hidden", str), ("lr", float), ("beta1", float), ("beta2", float), ("epsilon", float), ("seed", int)]:
        parser.add_argument(f"--{name}", type=kind)
    args = parser.parse_args()
    if not args.blas:
        missing = [name for name, value in vars(args).items() if value is None]
        if missing:
            parser.error("missing " + ", ".join("--" + name.replace("_", "-") for name in missing))
    return args


def main():
    args = parse()
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    used = blas()
    if args.blas:
        print(json.dumps(used), flush=True)
        return
    if used["reference"]:
        print(
            f"torch-ddp-train: torch computes with the reference BLAS ({', '.join(used['libraries'])}), about 40x slower "
            "at matmul than an optimized one; the comparison would measure the BLAS. Install OpenBLAS: "
            "`apt-get install libopenblas0-pthread`.",
            file=sys.stderr,
        )
        sys.exit(REFUSED)
    rank, world = args.rank, args.world
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=rank, world_size=world)
    train_x, train_y = load(args.data_dir, "train")
    test_x, test_y = load(args.data_dir, "t10k")
    torch.manual_seed(args.seed)
    net = mlp([int(units) for units in args.hidden.split(",") if units])
    ddp = nn.parallel.DistributedDataParallel(net) if world > 1 else net
    optimizer = torch.optim.Adam(ddp.parameters(), lr=args.lr, betas=(args.beta1, args.beta2), eps=args.epsilon)
    loss_fn = nn.CrossEntropyLoss()
    global_batch = args.batch_per_worker * world
    steps = 0
    for epoch in range(args.epochs):
        # The same order on every rank (same seed), each taking its part of every global batch.
        order = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(args.seed + epoch))
        for begin in range(0, len(order), global_batch):
            batch = order[begin : begin + global_batch]
            mine = batch[len(batch) * rank // world : len(batch) * (rank + 1) // world]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(ddp(train_x[mine]), train_y[mine]).backward()
            optimizer.step()
            steps += 1
    net.eval()
    with torch.no_grad():
        part = slice(len(test_y) * rank // world, len(test_y) * (rank + 1) // world)
        correct = torch.tensor([(net(test_x[part]).argmax(dim=1) == test_y[part]).sum().item()], dtype=torch.int64)
    if world > 1:
        dist.all_reduce(correct)
    if rank == 0:
        print(json.dumps({"testAccuracy": correct.item() / len(test_y), "steps": steps, "blas": used["name"]}), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
