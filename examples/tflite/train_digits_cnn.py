"""Train a small CNN on the 8x8 digits with backpropagation (numpy only, no TensorFlow) and write it as an int8
.tflite model, the way a user arrives with a model trained elsewhere (docs/tflite.md, "End to end").

    python3 examples/tflite/train_digits_cnn.py [--epochs 40] [-o examples/tflite/digits_cnn.tflite]

The network: conv 3x3 (8 filters, same padding) + ReLU, max-pool 2, reshape to 128, fully connected 32 + ReLU,
fully connected 10 (the classifier). Trained on the training split of onward's digits (the split every digits
spec with the same seed uses, default 0: its test set is never seen), softmax cross-entropy, SGD with momentum,
then quantised to int8 (per-channel weights, activations calibrated on the training images) by
onward.tflite.write. Seeded: the same file every time."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from onward.data import load_dataset
from onward.spec import parse_spec
from onward.tflite import write
from onward.tflite.kernels.conv_2d import windows

HERE = Path(__file__).resolve().parent


def forward(params: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Logits of images x (n, 8, 8, 1), and what the backward pass needs."""
    patches, _ = windows(x, 3, 3, (1, 1), (1, 1), (1, 1), (8, 8), 0)  # type: ignore[arg-type]
    z = np.einsum("nyxabi,cabi->nyxc", patches, params["conv"]) + params["conv_b"]
    a = np.maximum(z, 0.0)
    blocks = a.reshape(-1, 4, 2, 4, 2, 8)
    pooled = blocks.max(axis=(2, 4))
    h = pooled.reshape(len(x), -1)
    z1 = h @ params["fc1"].T + params["fc1_b"]
    h1 = np.maximum(z1, 0.0)
    logits = h1 @ params["fc2"].T + params["fc2_b"]
    return logits, {"patches": patches, "z": z, "blocks": blocks, "pooled": pooled, "h": h, "z1": z1, "h1": h1}


def gradients(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    logits, c = forward(params, x)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    d = (p - np.eye(10)[y]) / len(x)
    g = {"fc2": d.T @ c["h1"], "fc2_b": d.sum(0)}
    d1 = (d @ params["fc2"]) * (c["z1"] > 0)
    g |= {"fc1": d1.T @ c["h"], "fc1_b": d1.sum(0)}
    dpooled = (d1 @ params["fc1"]).reshape(c["pooled"].shape)
    mask = c["blocks"] == c["pooled"][:, :, None, :, None, :]  # the max of each window (ties share it)
    dz = (mask * dpooled[:, :, None, :, None, :]).reshape(c["z"].shape) * (c["z"] > 0)
    g |= {"conv": np.einsum("nyxabi,nyxc->cabi", c["patches"], dz), "conv_b": dz.sum((0, 1, 2))}
    return g


def train(epochs: int, seed: int = 0) -> tuple[dict[str, np.ndarray], float, np.ndarray]:
    data = load_dataset(parse_spec({"name": "digits", "seed": seed, "model": {"hidden": []},
                                    "rule": {"name": "pepita"}, "data": {"set": "digits"}}))
    x, y = data.x_train.reshape(-1, 8, 8, 1), data.y_train
    rng = np.random.default_rng(seed)
    params = {"conv": rng.normal(0, np.sqrt(2 / 9), (8, 3, 3, 1)), "conv_b": np.zeros(8),
              "fc1": rng.normal(0, np.sqrt(2 / 128), (32, 128)), "fc1_b": np.zeros(32),
              "fc2": rng.normal(0, np.sqrt(2 / 32), (10, 32)), "fc2_b": np.zeros(10)}
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    for epoch in range(epochs):
        lr = 0.1 if epoch < epochs * 3 // 4 else 0.01
        order = rng.permutation(len(x))
        for start in range(0, len(x), 32):
            idx = order[start:start + 32]
            for k, g in gradients(params, x[idx], y[idx]).items():
                velocity[k] = 0.9 * velocity[k] + g
                params[k] -= lr * velocity[k]
    logits, _ = forward(params, data.x_test.reshape(-1, 8, 8, 1))
    return params, float(np.mean(logits.argmax(1) == data.y_test)), x


def layers(params: dict[str, np.ndarray]) -> list[write.Layer]:
    return [write.Layer("conv", params["conv"], params["conv_b"], "relu"), write.Layer("maxpool", pool=2),
            write.Layer("reshape", shape=(128,)), write.Layer("fc", params["fc1"], params["fc1_b"], "relu"),
            write.Layer("fc", params["fc2"], params["fc2_b"])]


def build(epochs: int = 40, seed: int = 0) -> tuple[bytes, float]:
    """The .tflite bytes of the CNN trained on split `seed`, and its float test accuracy."""
    params, accuracy, x = train(epochs, seed)
    return write.build(layers(params), x, per_channel=True, description="onward digits CNN"), accuracy


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("-o", "--output", type=Path, default=HERE / "digits_cnn.tflite")
    ap.add_argument("--seed", type=int, default=0, help="the digits split and the initial weights")
    args = ap.parse_args()
    model, accuracy = build(args.epochs, args.seed)
    args.output.write_bytes(model)
    print(f"float test accuracy {100 * accuracy:.1f} %; wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
