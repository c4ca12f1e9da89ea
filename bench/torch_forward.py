#!/usr/bin/python3
"""PyTorch reference for advkit's forward-pass benchmark (bench/real_models.ts).

torchvision's mobilenet_v2 or resnet18 in eval mode (batch norm with running statistics),
seeded random weights and data, logits of one batch under torch.inference_mode(): what a
clean-accuracy pass costs. Needs Debian's python3-torch and python3-torchvision; run with
/usr/bin/python3. Prints one JSON line: images per second (median over rounds) and the
settings, like shared/reference/torch_pgd.py.
"""
import argparse, json, statistics, time

import torch
import torchvision

ap = argparse.ArgumentParser()
ap.add_argument("--arch", default="mobilenet_v2", choices=["mobilenet_v2", "resnet18"])
ap.add_argument("--size", type=int, default=224)
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--classes", type=int, default=10)
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()

torch.manual_seed(0)
torch.set_num_threads(args.threads)
model = getattr(torchvision.models, args.arch)(num_classes=args.classes).eval()
x = torch.rand(args.batch, 3, args.size, args.size)

with torch.inference_mode():
    model(x)  # warm-up
    rates = []
    for _ in range(args.rounds):
        t = time.perf_counter()
        model(x).argmax(1)
        rates.append(args.batch / (time.perf_counter() - t))
print(json.dumps({"loop": "pytorch-forward", "arch": args.arch, "torch": torch.__version__, "threads": args.threads,
                  "batch": args.batch, "images_per_s": round(statistics.median(rates), 2)}))
