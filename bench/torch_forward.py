#!/usr/bin/python3
"""PyTorch reference for advkit's forward-pass benchmark (bench/real_models.ts).

torchvision's mobilenet_v2 or resnet18 in eval mode (batch norm with running statistics),
seeded random weights and data, logits of one batch under torch.inference_mode(): what a
clean-accuracy pass costs. Needs Debian's python3-torch and python3-torchvision; run with
/usr/bin/python3. Prints one JSON line: images per second (median over rounds) and the
settings, like shared/reference/torch_pgd.py.
"""
import torch

from torch_common import report, setup

args, model, x, _ = setup(rounds=5, train=False)


def step():
    with torch.inference_mode():
        model(x).argmax(1)


report("pytorch-forward", args, step)
