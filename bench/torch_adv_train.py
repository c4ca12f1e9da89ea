#!/usr/bin/python3
"""PyTorch reference for advkit's adversarial-training-step benchmark (bench/real_models.ts).

One FGSM-RS step (Wong et al. 2020, arXiv:2001.03994) as advkit's trainingStep takes it: a
random start in the eps-ball, one signed gradient step of 1.25 eps, projection and clipping,
then an SGD step on the cross-entropy of the adversarial batch. torchvision's mobilenet_v2 or
resnet18 in train mode (batch norm with batch statistics), seeded random weights and data.
Needs Debian's python3-torch and python3-torchvision; run with /usr/bin/python3.
Prints one JSON line: images per second (median over rounds) and the settings, like
shared/reference/torch_pgd.py.
"""
import argparse, json, statistics, time

import torch
import torch.nn.functional as F
import torchvision

ap = argparse.ArgumentParser()
ap.add_argument("--arch", default="mobilenet_v2", choices=["mobilenet_v2", "resnet18"])
ap.add_argument("--size", type=int, default=224)
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--classes", type=int, default=10)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()

torch.manual_seed(0)
torch.set_num_threads(args.threads)
model = getattr(torchvision.models, args.arch)(num_classes=args.classes).train()
opt = torch.optim.SGD(model.parameters(), lr=1e-4)
x = torch.rand(args.batch, 3, args.size, args.size)
y = torch.randint(0, args.classes, (args.batch,))
eps = 4 / 255


def step():
    delta = torch.empty_like(x).uniform_(-eps, eps).requires_grad_(True)
    loss = F.cross_entropy(model((x + delta).clamp(0, 1)), y)
    grad, = torch.autograd.grad(loss, delta)
    delta = (delta.detach() + 1.25 * eps * grad.sign()).clamp(-eps, eps)
    adv = (x + delta).clamp(0, 1)
    opt.zero_grad()
    F.cross_entropy(model(adv), y).backward()
    opt.step()


step()  # warm-up
rates = []
for _ in range(args.rounds):
    t = time.perf_counter()
    step()
    rates.append(args.batch / (time.perf_counter() - t))
print(json.dumps({"loop": "pytorch-fgsm-rs-training-step", "arch": args.arch, "torch": torch.__version__, "threads": args.threads,
                  "batch": args.batch, "images_per_s": round(statistics.median(rates), 2)}))
