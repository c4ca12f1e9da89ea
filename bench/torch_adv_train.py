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
import torch
import torch.nn.functional as F

from torch_common import report, setup

args, model, x, y = setup(rounds=3, train=True)
opt = torch.optim.SGD(model.parameters(), lr=1e-4)
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


report("pytorch-fgsm-rs-training-step", args, step)
