#!/usr/bin/python3
"""The minimum-norm attacks of torchattacks and IBM ART on advkit's weights and points.

Runs torchattacks' CW (L2) and DeepFool (L2) and ART's ElasticNet (EAD, L1) on advkit's
mnist-cnn rebuilt in PyTorch (bench/torch_mnist.py) and on the points advkit attacks
(`npx vite-node bench/export_points.ts`), with the budgets given on the command line, and
prints one JSON line: per attack the median distance over the clean-correct points (an
example the attack did not break counts as infinitely far; the median is null when more than
half are), how many it broke, its seconds and the per-example distances (null: not broken).
advkit's figures for the same budgets come from `advkit eval --attacks ...` (docs/performance.md).

Bring the references with `fetch` (github:Harry24k/adversarial-attacks-pytorch,
github:Trusted-AI/adversarial-robustness-toolbox) and pass the folders holding their
`torchattacks` and `art` packages. Needs Debian's python3-torch (and python3-sklearn,
python3-tqdm for ART); run with /usr/bin/python3.
usage: minnorm_compare.py --model DIR --x X.npy --y Y.npy --torchattacks DIR --art DIR
         [--attacks cw,deepfool,ead] [--cw-c 1] [--cw-kappa 0] [--cw-steps 50] [--cw-lr 0.01]
         [--df-steps 50] [--df-overshoot 0.02] [--ead-binary 9] [--ead-iter 100]
         [--ead-beta 1e-3] [--ead-lr 1e-2] [--ead-c 1e-3] [--threads 2] [--bs 100]
"""
import argparse, contextlib, json, os, sys, time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_mnist import load_mnist_cnn, load_points  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--x", required=True)
ap.add_argument("--y", required=True)
ap.add_argument("--torchattacks", required=True)
ap.add_argument("--art", required=True)
ap.add_argument("--attacks", default="cw,deepfool,ead")
ap.add_argument("--cw-c", type=float, default=1.0)
ap.add_argument("--cw-kappa", type=float, default=0.0)
ap.add_argument("--cw-steps", type=int, default=50)
ap.add_argument("--cw-lr", type=float, default=0.01)
ap.add_argument("--df-steps", type=int, default=50)
ap.add_argument("--df-overshoot", type=float, default=0.02)
ap.add_argument("--ead-binary", type=int, default=9)
ap.add_argument("--ead-iter", type=int, default=100)
ap.add_argument("--ead-beta", type=float, default=1e-3)
ap.add_argument("--ead-lr", type=float, default=1e-2)
ap.add_argument("--ead-c", type=float, default=1e-3)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--bs", type=int, default=100)
args = ap.parse_args()
sys.path.insert(0, args.torchattacks)
sys.path.insert(0, args.art)
torch.set_num_threads(args.threads)

model = load_mnist_cnn(args.model)
x, y = load_points(args.x, args.y)
with torch.no_grad():
    correct = model(x).argmax(1) == y


def batches(fn):
    """fn over the clean-correct points in batches of --bs; the adversarial batch, in order."""
    idx = correct.nonzero().flatten()
    return idx, torch.cat([fn(x[idx[i:i + args.bs]], y[idx[i:i + args.bs]]) for i in range(0, len(idx), args.bs)])


def summary(idx, adv, p, seconds):
    """Distances in the Lp norm p of the points the attack broke; the median counts the rest as infinite."""
    with torch.no_grad():
        broken = model(adv).argmax(1) != y[idx]
    dist = (adv - x[idx]).flatten(1).norm(p=p, dim=1)
    d = torch.where(broken, dist, torch.full_like(dist, float("inf"))).sort().values
    m = len(d)
    median = (d[m // 2] if m % 2 else (d[m // 2 - 1] + d[m // 2]) / 2).item() if m else None
    return {"median": median if median is not None and np.isfinite(median) else None, "broken": int(broken.sum()),
            "attacked": m, "seconds": round(seconds, 1),
            "distances": [round(float(v), 6) if b else None for v, b in zip(dist, broken)]}


out = {"examples": len(y), "cleanCorrect": int(correct.sum()), "threads": args.threads, "torch": torch.__version__}
wanted = args.attacks.split(",")
if "cw" in wanted:
    import torchattacks
    atk = torchattacks.CW(model, c=args.cw_c, kappa=args.cw_kappa, steps=args.cw_steps, lr=args.cw_lr)
    t0 = time.time()
    idx, adv = batches(atk)
    out["cw"] = {"budget": {"c": args.cw_c, "kappa": args.cw_kappa, "steps": args.cw_steps, "lr": args.cw_lr}, **summary(idx, adv, 2, time.time() - t0)}
if "deepfool" in wanted:
    import torchattacks
    atk = torchattacks.DeepFool(model, steps=args.df_steps, overshoot=args.df_overshoot)
    t0 = time.time()
    idx, adv = batches(atk)
    out["deepfool"] = {"budget": {"steps": args.df_steps, "overshoot": args.df_overshoot}, **summary(idx, adv, 2, time.time() - t0)}
if "ead" in wanted:
    from art.attacks.evasion import ElasticNet
    from art.estimators.classification import PyTorchClassifier
    clf = PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 28, 28), nb_classes=10, clip_values=(0.0, 1.0))
    atk = ElasticNet(clf, confidence=0.0, targeted=False, learning_rate=args.ead_lr, binary_search_steps=args.ead_binary,
                     max_iter=args.ead_iter, beta=args.ead_beta, initial_const=args.ead_c, batch_size=args.bs, decision_rule="EN", verbose=False)
    t0 = time.time()
    with contextlib.redirect_stdout(sys.stderr):
        idx, adv = batches(lambda xb, yb: torch.from_numpy(atk.generate(xb.numpy())))
    out["ead"] = {"budget": {"binary": args.ead_binary, "iter": args.ead_iter, "beta": args.ead_beta, "lr": args.ead_lr, "c": args.ead_c}, **summary(idx, adv, 1, time.time() - t0)}
print(json.dumps(out))
