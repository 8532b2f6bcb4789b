#!/usr/bin/env python3
"""Export torchvision's MobileNetV2 (random weights) to ONNX for bench/onnx-vs-tfjs.js.

    apt-get install python3-torch python3-torchvision      # Debian 12: torch 1.13, torchvision 0.14
    /usr/bin/python3 bench/export-mobilenet-v2.py [out.onnx]  # default: bench/results/mobilenet_v2.onnx

Random weights: nothing is downloaded, and inference speed does not depend on the weight values.
The graph is what torch.onnx.export makes of the real architecture (opset 13, dynamic batch, NCHW
[N, 3, 224, 224]); its node names carry the module paths, so `layertap layers` and taps such as
`classifier.1` at input (the pooled 1280-d features) work on it.
"""
import os
import sys

import torch
import torchvision

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results", "mobilenet_v2.onnx")
os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)

torch.manual_seed(0)
model = torchvision.models.mobilenet_v2(weights=None).eval()
x = torch.randn(1, 3, 224, 224)
torch.onnx.export(
    model,
    x,
    out,
    opset_version=13,
    input_names=["input"],
    output_names=["logits"],
    dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    do_constant_folding=True,
)
print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB): torchvision mobilenet_v2, random weights, input [N, 3, 224, 224]")
