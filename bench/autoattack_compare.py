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
import argparse, contextlib, json, sys, time

import numpy as np
import torch
import torch.nn as nn

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


def load_weights(folder):
    """The model.json weights manifest read against weights.bin, in manifest order."""
    spec = json.load(open(f"{folder}/model.json"))
    blob = open(f"{folder}/{spec['weightsManifest'][0]['paths'][0]}", "rb").read()
    out, off = [], 0
    for group in spec["weightsManifest"]:
        for w in group["weights"]:
            n = int(np.prod(w["shape"]))
            out.append(np.frombuffer(blob, dtype=np.float32, count=n, offset=off).reshape(w["shape"]))
            off += 4 * n
    return out


class ToNHWCFlatten(nn.Module):
    """Keras flattens [H, W, C]; PyTorch would flatten [C, H, W]."""
    def forward(self, x):
        return x.permute(0, 2, 3, 1).flatten(1)


k1, b1, k2, b2, w3, b3, w4, b4 = load_weights(args.model)
model = nn.Sequential(
    nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), ToNHWCFlatten(),
    nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))
with torch.no_grad():
    model[0].weight.copy_(torch.from_numpy(k1.transpose(3, 2, 0, 1).copy())); model[0].bias.copy_(torch.from_numpy(b1))
    model[3].weight.copy_(torch.from_numpy(k2.transpose(3, 2, 0, 1).copy())); model[3].bias.copy_(torch.from_numpy(b2))
    model[7].weight.copy_(torch.from_numpy(w3.T.copy())); model[7].bias.copy_(torch.from_numpy(b3))
    model[9].weight.copy_(torch.from_numpy(w4.T.copy())); model[9].bias.copy_(torch.from_numpy(b4))
model.eval()

x = torch.from_numpy(np.load(args.x).astype(np.float32)).permute(0, 3, 1, 2).contiguous()
y = torch.from_numpy(np.load(args.y).astype(np.int64))
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
