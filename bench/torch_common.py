"""What advkit's PyTorch reference loops share (bench/torch_forward.py, bench/torch_adv_train.py).

The command line (--arch, --size, --batch, --classes, --rounds, --threads), a seeded
torchvision model and batch, the median rate over timed rounds after one warm-up, and the
one JSON line bench/real_models.ts reads. Run the scripts with /usr/bin/python3 (Debian's
python3-torch and python3-torchvision); this file is imported from their directory.
"""
import argparse, json, statistics, time

import torch
import torchvision


def setup(rounds, train):
    """Parse the shared flags; return (args, model, x, y) with torch seeded and threads set."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="mobilenet_v2", choices=["mobilenet_v2", "resnet18"])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = getattr(torchvision.models, args.arch)(num_classes=args.classes).train(train)
    x = torch.rand(args.batch, 3, args.size, args.size)
    y = torch.randint(0, args.classes, (args.batch,))
    return args, model, x, y


def report(loop, args, step):
    """Run step once to warm up, then args.rounds timed times; print the median images/s."""
    step()
    rates = []
    for _ in range(args.rounds):
        t = time.perf_counter()
        step()
        rates.append(args.batch / (time.perf_counter() - t))
    print(json.dumps({"loop": loop, "arch": args.arch, "torch": torch.__version__, "threads": args.threads,
                      "batch": args.batch, "images_per_s": round(statistics.median(rates), 2)}))
