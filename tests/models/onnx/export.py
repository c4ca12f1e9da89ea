"""Exports a family of PyTorch classifiers to ONNX with torch.onnx.export, beside each the
reference the tests compare with: an input batch (NCHW float32), PyTorch's logits for it, and
PyTorch autograd's input gradient of sum(logits * r) for a seeded r.

    /usr/bin/python3 tests/models/onnx/export.py OUT_DIR [--torchvision] [--opset 13]

Writes OUT_DIR/<name>/model.onnx, x.npy, logits.npy, r.npy, grad.npy. The small hand-written
models are committed under tests/models/onnx/fixtures so the suite runs without torch; the
torchvision ones (tens of MB) are exported by the tests when Debian's python3-torch is present.
"""
import argparse
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class TinyCnn(nn.Module):
    """conv-bn-relu, a padded 3x3/2 max pool, conv-relu, global average pool, flatten, linear."""
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 12, 3, stride=1, padding=1)
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.c1(x))), 3, 2, 1)
        x = F.relu(self.c2(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Residual(nn.Module):
    """Residual blocks: identity shortcut, and a strided one with a 1x1 conv; LeakyReLU, avg pool."""
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.a1 = nn.Conv2d(8, 8, 3, padding=1)
        self.a2 = nn.Conv2d(8, 8, 3, padding=1)
        self.b1 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.b2 = nn.Conv2d(16, 16, 3, padding=1)
        self.short = nn.Conv2d(8, 16, 1, stride=2)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = F.relu(x + self.a2(F.relu(self.a1(x))))
        x = F.leaky_relu(self.short(x) + self.b2(F.relu(self.b1(x))), 0.1)
        x = F.avg_pool2d(x, 2)
        return self.fc(x.mean(dim=(2, 3)))


class Depthwise(nn.Module):
    """MobileNet-style: depthwise (groups = channels, multiplier 2), pointwise, ReLU6, hardswish, SiLU, dilation."""
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(8, 16, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(16, 12, 1)
        self.dil = nn.Conv2d(12, 12, 3, padding=2, dilation=2)
        self.fc = nn.Linear(12, 6)

    def forward(self, x):
        x = F.relu6(self.c(x))
        x = F.hardswish(self.dw(x))
        x = F.silu(self.pw(x))
        x = torch.tanh(self.dil(x))
        return self.fc(x.mean(dim=(2, 3)))


class SqueezeExcite(nn.Module):
    """A squeeze-excite block: global pool, 1x1 convs, hardsigmoid gate, channel-wise product; sigmoid."""
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, padding=1)
        self.s1 = nn.Conv2d(8, 4, 1)
        self.s2 = nn.Conv2d(4, 8, 1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        x = F.relu(self.c(x))
        g = F.hardsigmoid(self.s2(F.relu(self.s1(F.adaptive_avg_pool2d(x, 1)))))
        x = torch.sigmoid(x * g)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Shuffle(nn.Module):
    """ShuffleNet pieces: a group conv (2 groups), channel shuffle by view/transpose/view, chunk, concat."""
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, padding=1)
        self.g = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.b = nn.Conv2d(4, 4, 1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = F.relu(self.c(x))
        x = F.relu(self.g(x))
        n, c, h, w = x.shape
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
        a, b = x.chunk(2, dim=1)
        x = torch.cat([a, F.relu(self.b(b))], dim=1)
        return self.fc(F.adaptive_max_pool2d(x, 1).flatten(1))


class ViewFlatten(nn.Module):
    """Normalization in the graph, x.view(x.size(0), -1) of 4x4 maps (NCHW order), GELU (erf), softmax at the end."""
    def __init__(self):
        super().__init__()
        self.register_buffer('mean', torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.c = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.fc1 = nn.Linear(4 * 4 * 4, 16)
        self.fc2 = nn.Linear(16, 5)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = F.relu(self.c(x))
        x = x.view(x.size(0), -1)
        return F.softmax(self.fc2(F.gelu(self.fc1(x))), dim=1)


MODELS = {'tiny_cnn': (TinyCnn, 16), 'residual': (Residual, 16), 'depthwise': (Depthwise, 16),
          'squeeze_excite': (SqueezeExcite, 8), 'shuffle': (Shuffle, 8), 'view_flatten': (ViewFlatten, 8)}


def export(name, model, size, out, opset):
    torch.manual_seed(7)
    model.eval()
    for m in model.modules():  # non-trivial batch norm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    g = torch.Generator().manual_seed(11)
    x = torch.rand(3, 3, size, size, generator=g)
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    torch.onnx.export(model, x, os.path.join(d, 'model.onnx'), opset_version=opset, input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}}, do_constant_folding=True)
    xg = x.clone().requires_grad_(True)
    logits = model(xg)
    r = torch.rand(logits.shape, generator=g) - 0.5
    (grad,) = torch.autograd.grad((logits * r).sum(), xg)
    np.save(os.path.join(d, 'x.npy'), x.numpy().astype(np.float32))
    np.save(os.path.join(d, 'logits.npy'), logits.detach().numpy().astype(np.float32))
    np.save(os.path.join(d, 'r.npy'), r.numpy().astype(np.float32))
    np.save(os.path.join(d, 'grad.npy'), grad.numpy().astype(np.float32))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('out')
    p.add_argument('--torchvision', action='store_true', help='export torchvision resnet18 and mobilenet_v2 (32x32, 10 classes) instead')
    p.add_argument('--opset', type=int, default=13)
    a = p.parse_args()
    torch.manual_seed(3)
    if a.torchvision:
        import torchvision
        export('resnet18', torchvision.models.resnet18(num_classes=10), 32, a.out, a.opset)
        export('mobilenet_v2', torchvision.models.mobilenet_v2(num_classes=10), 32, a.out, a.opset)
    else:
        for name, (cls, size) in MODELS.items():
            torch.manual_seed(3)
            export(name, cls(), size, a.out, a.opset)


if __name__ == '__main__':
    main()
