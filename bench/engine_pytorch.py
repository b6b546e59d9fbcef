"""PyTorch CPU as a peer of `slimgrad bench engine` (bench/engine-pytorch.ts runs it).

One case per process: `python3 engine_pytorch.py '<json>'` with {"kind": "gemm", "size": N,
"threads": T, "seconds": S} or {"kind": "train", "model": "mlp"|"cnn"|"resnet20", "batch": B,
"threads": T, "seconds": S}. The caller sets OPENBLAS_NUM_THREADS / OMP_NUM_THREADS to T before
the interpreter starts; torch.set_num_threads(T) pins the intra-op pool. Prints one JSON line:
the case's figure (best of 3 timing windows), peak RSS, and the libraries in use (the BLAS
library mapped into the process, oneDNN's version and whether convolutions use it).

The models are the architectures of bench/engine-train.ts (slimgrad's src/nn/models.ts): NCHW,
float32, plain SGD (lr 0.01), random inputs and labels, cross-entropy.
"""
import json
import os
import re
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CLASSES = 10
WINDOWS = 3


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, CLASSES))


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, CLASSES),
    )


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout else None
        )

    def forward(self, x):
        return F.relu(self.body(x) + (self.shortcut(x) if self.shortcut is not None else x))


def resnet20():
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    c = 16
    for width, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(BasicBlock(c, width, stride if i == 0 else 1))
            c = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, CLASSES)]
    return nn.Sequential(*layers)


MODELS = {"mlp": (mlp, (1, 28, 28)), "cnn": (small_cnn, (1, 28, 28)), "resnet20": (resnet20, (3, 32, 32))}


def best_seconds(fn, seconds):
    """Seconds per call: one warm-up call, then WINDOWS windows of >= seconds / WINDOWS (and 2 calls); the fastest counts."""
    fn()
    best = float("inf")
    for _ in range(WINDOWS):
        reps, t0 = 0, time.perf_counter()
        while reps < 2 or time.perf_counter() - t0 < seconds / WINDOWS:
            fn()
            reps += 1
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def libraries():
    """The BLAS/LAPACK libraries mapped into this process (folder/file: Debian's alternatives keep
    OpenBLAS's libblas.so.3 in an openblas-pthread folder) and oneDNN's version."""
    paths = {line.split()[-1] for line in open("/proc/self/maps") if len(line.split()) > 5}
    blas = sorted("/".join(os.path.realpath(p).split("/")[-2:]) for p in paths if re.search(r"blas|lapack|mkl", os.path.basename(p)))
    m = re.search(r"MKL-DNN (v[\d.]+)|oneDNN (v[\d.]+)", torch.__config__.show())
    return {
        "torch": torch.__version__,
        "blas": blas or None,
        "onednn": (m.group(1) or m.group(2)) if m else None,
        "onednnConvolutions": bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled),
    }


def main():
    case = json.loads(sys.argv[1])
    torch.set_num_threads(case["threads"])
    torch.manual_seed(0)
    if case["kind"] == "gemm":
        n = case["size"]
        a, b = torch.rand(n, n), torch.rand(n, n)
        sec = best_seconds(lambda: torch.mm(a, b), case["seconds"])
        result = {"gflops": 2 * n ** 3 / sec / 1e9}
    else:
        build, shape = MODELS[case["model"]]
        model = build().train()
        x = torch.randn(case["batch"], *shape)
        y = torch.randint(0, CLASSES, (case["batch"],))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()

        sec = best_seconds(step, case["seconds"])
        result = {"samplesPerSec": case["batch"] / sec}
    result["peakRssBytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result["libraries"] = libraries()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
