#!/usr/bin/python3
"""AutoAttack's reference implementation on advkit's weights, for the strength comparison.

Rebuilds an advkit mnist-cnn (conv 32@3x3 relu, maxpool 2, conv 64@3x3 relu, maxpool 2,
dense 128 relu, dense 10; the LayersModel advkit saves: model.json + weights.bin) in PyTorch
with the same weights, runs AutoAttack (https://github.com/fra31/auto-attack; pass the folder
holding its `autoattack` package with --autoattack) on the same points, and prints one JSON
line: robust accuracy, seconds, and the indices it left robust.

Needs Debian's python3-torch; run with /usr/bin/python3. The points come as advkit writes
them with `npx vite-node bench/export_points.ts` (x: float32 [N, 28, 28, 1] in [0, 1]; y: int).
usage: autoattack_compare.py --model DIR --x X.npy --y Y.npy --autoattack DIR
                             [--eps 0.3] [--version standard] [--threads 2] [--bs 500]
"""
import argparse, contextlib, json, os, sys, time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_mnist import load_mnist_cnn, load_points  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--x", required=True)
ap.add_argument("--y", required=True)
ap.add_argument("--autoattack", required=True)
ap.add_argument("--eps", type=float, default=0.3)
ap.add_argument("--norm", default="Linf")
ap.add_argument("--version", default="standard")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--bs", type=int, default=500)
args = ap.parse_args()
sys.path.insert(0, args.autoattack)
from autoattack import AutoAttack  # noqa: E402

torch.set_num_threads(args.threads)


model = load_mnist_cnn(args.model)

x, y = load_points(args.x, args.y)
with torch.no_grad():
    clean = (model(x).argmax(1) == y).float().mean().item()
adversary = AutoAttack(model, norm=args.norm, eps=args.eps, version=args.version, seed=0, verbose=False, device="cpu")
t0 = time.time()
with contextlib.redirect_stdout(sys.stderr):  # AutoAttack prints its warnings on stdout
    adv = adversary.run_standard_evaluation(x, y, bs=args.bs)
seconds = time.time() - t0
with torch.no_grad():
    robust = (model(adv).argmax(1) == y) & ((adv - x).abs().flatten(1).amax(1) <= args.eps + 1e-6 if args.norm == "Linf" else True)
print(json.dumps({"clean": clean, "robust": robust.float().mean().item(), "seconds": seconds, "examples": len(y),
                  "eps": args.eps, "version": args.version, "threads": args.threads,
                  "robustIndices": [int(i) for i in robust.nonzero().flatten()]}))
