#!/usr/bin/env python3
"""Export torchvision's MobileNetV2 (random weights) to ONNX for the bench and bench/onnx-vs-tfjs.js.

    apt-get install python3-torch python3-torchvision      # Debian 12: torch 1.13, torchvision 0.14
    /usr/bin/python3 bench/export-mobilenet-v2.py [out.onnx]  # default: bench/results/mobilenet_v2.onnx

Random weights: nothing is downloaded, and inference speed does not depend on the weight values.
The graph is what torch.onnx.export makes of the real architecture (opset 13, dynamic batch, NCHW
[N, 3, 224, 224]); its node names carry the module paths, so `layertap layers` and taps such as
`classifier.1` at input (the pooled 1280-d features) work on it.

It also writes <out>_features.onnx (bench/results/mobilenet_v2_features.onnx): the same network and
weights with the pooled features as a graph output of their own, `features` [N, 1280], besides
`logits`. That is the model a hand-written loop runs, since it cannot tap a layer: the bench's
strong hand loop (bench/lib/strong-loop.mjs) reads its `features` output.
"""
import os
import sys

import torch
import torchvision

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results", "mobilenet_v2.onnx")
os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
features_out = os.path.splitext(out)[0] + "_features.onnx"


class WithFeatures(torch.nn.Module):
    """MobileNetV2's own forward, returning the input of classifier.1 (pooled, flattened) too."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        f = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(self.net.features(x), (1, 1)), 1)
        return f, self.net.classifier(f)


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
torch.onnx.export(
    WithFeatures(model).eval(),
    x,
    features_out,
    opset_version=13,
    input_names=["input"],
    output_names=["features", "logits"],
    dynamic_axes={"input": {0: "batch"}, "features": {0: "batch"}, "logits": {0: "batch"}},
    do_constant_folding=True,
)
print(f"wrote {features_out} ({os.path.getsize(features_out) / 1e6:.1f} MB): the same, outputs features [N, 1280] and logits")
