"""advkit's mnist-cnn rebuilt in PyTorch with its weights, and advkit's exported points.

The compare scripts (bench/autoattack_compare.py, bench/minnorm_compare.py) run reference
implementations on exactly the model and points advkit attacks: the LayersModel advkit saves
(model.json + weights.bin: conv 32@3x3 relu, maxpool 2, conv 64@3x3 relu, maxpool 2, dense 128
relu, dense 10) and the NPY points `bench/export_points.ts` writes (x float32 [N, 28, 28, 1] in
[0, 1]; y int). Imported from this directory; run with /usr/bin/python3 (Debian's python3-torch).
"""
import json

import numpy as np
import torch
import torch.nn as nn


def load_weights(folder):
    """The model.json weights manifest read against weights.bin, in manifest order."""
    spec = json.load(open(f"{folder}/model.json"))
    blob = open(f"{folder}/{spec['weightsManifest'][0]['paths'][0]}", "rb").read()
    out, off = [], 0
    for group in spec["weightsManifest"]:
        for w in group["weights"]:
            n = int(np.prod(w["shape"]))
            out.append(np.frombuffer(blob, dtype=np.float32, count=n, offset=off).reshape(w["shape"]).copy())
            off += 4 * n
    return out


class ToNHWCFlatten(nn.Module):
    """Keras flattens [H, W, C]; PyTorch would flatten [C, H, W]."""
    def forward(self, x):
        return x.permute(0, 2, 3, 1).flatten(1)


def load_mnist_cnn(folder):
    """The advkit mnist-cnn saved in `folder`, as an eval-mode PyTorch module on NCHW input."""
    k1, b1, k2, b2, w3, b3, w4, b4 = load_weights(folder)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), ToNHWCFlatten(),
        nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(k1.transpose(3, 2, 0, 1).copy())); model[0].bias.copy_(torch.from_numpy(b1))
        model[3].weight.copy_(torch.from_numpy(k2.transpose(3, 2, 0, 1).copy())); model[3].bias.copy_(torch.from_numpy(b2))
        model[7].weight.copy_(torch.from_numpy(w3.T.copy())); model[7].bias.copy_(torch.from_numpy(b3))
        model[9].weight.copy_(torch.from_numpy(w4.T.copy())); model[9].bias.copy_(torch.from_numpy(b4))
    return model.eval()


def load_points(x_path, y_path):
    """advkit's exported points as NCHW float32 images and int64 labels."""
    x = torch.from_numpy(np.load(x_path).astype(np.float32)).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(np.load(y_path).astype(np.int64))
    return x, y
