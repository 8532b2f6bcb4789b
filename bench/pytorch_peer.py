#!/usr/bin/env python3
"""Peer benchmark (not a test): the same image-embedding job done the usual PyTorch way.

A batch loop over a folder of JPEGs: PIL decode, torchvision Resize(224) + CenterCrop(224) +
ToTensor + Normalize (the preprocessing layertap's ONNX job uses: shorter side to 224, centre
crop, ImageNet mean/std), torchvision's MobileNetV2 (random weights: speed does not depend on
the weight values), a register_forward_hook on classifier.1 that keeps its input (the pooled
1280-d features), and the features of each batch written to a float32 .npy file.

    /usr/bin/python3 bench/pytorch_peer.py <jpeg-dir> [--batch 32] [--threads 2] [--runs 3] [--out features.npy]

Prints one JSON object: rows/s (median of --runs timed passes after one warm-up pass), the
per-pass seconds, and the torch version. bench/run.js calls it for the `pytorch` suite. When
PyTorch or torchvision is not installed it prints {"skipped": "..."} and exits 0.
"""
import argparse
import json
import os
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser(description="PyTorch forward-hook peer benchmark for layertap")
    ap.add_argument("images")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=None, help="features file (default: a temp file, removed)")
    args = ap.parse_args()

    try:
        import numpy as np
        import torch
        import torchvision
        from PIL import Image
        from torchvision import transforms
    except ImportError as err:
        print(json.dumps({"skipped": f"PyTorch peer needs torch, torchvision, numpy and Pillow: {err}"}))
        return 0

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(weights=None).eval()
    captured = {}

    def hook(module, inputs, output):
        captured["features"] = inputs[0].detach()

    model.classifier[1].register_forward_hook(hook)
    preprocess = transforms.Compose([
        transforms.Resize(224),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    files = sorted(os.path.join(args.images, f) for f in os.listdir(args.images) if f.lower().endswith((".jpg", ".jpeg")))
    if not files:
        print(json.dumps({"error": f"no JPEGs in {args.images}"}))
        return 1
    out = args.out or os.path.join(os.environ.get("TMPDIR", "/tmp"), f"pytorch-peer-{os.getpid()}.npy")

    def one_pass():
        features = np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=(len(files), 1280))
        with torch.no_grad():
            for start in range(0, len(files), args.batch):
                chunk = files[start:start + args.batch]
                x = torch.stack([preprocess(Image.open(f).convert("RGB")) for f in chunk])
                model(x)
                features[start:start + len(chunk)] = captured["features"].numpy()
        features.flush()
        del features

    times = []
    try:
        for run in range(args.runs + 1):
            t0 = time.perf_counter()
            one_pass()
            if run > 0:  # pass 0 is the warm-up
                times.append(time.perf_counter() - t0)
    finally:
        if args.out is None and os.path.exists(out):
            os.remove(out)
    median = statistics.median(times)
    print(json.dumps({
        "rowsPerSecond": len(files) / median,
        "seconds": median,
        "runs": times,
        "rows": len(files),
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "what": "PIL decode + torchvision transforms + MobileNetV2 with a forward hook on classifier.1, features to .npy, one process",
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
