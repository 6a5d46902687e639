"""Time per face of the identity network: the PyTorch port of dlib's ResNet, forward and
forward + backward, alone (150x150 chips) and with the differentiable alignment from a
512x512 photo; and dlib's own ``compute_face_descriptor`` for comparison.

Usage: python benchmarks/bench_identity.py [--device cpu|cuda] [--threads 2] [--repeats 5]

Prints one markdown table (ms per face, the median over repeats).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parents[1]


def median_ms_per_face(fn, faces: int, repeats: int, sync) -> float:
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t) / faces * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    from hifialbedo.io.images import read_photo
    from hifialbedo.mesh.landmarks import LandmarkDetector
    from hifialbedo.models.identity import IdentityNet, load_identity_model

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    photo = read_photo(REPO / "samples" / "astronaut.png").pixels.copy()
    landmarks = LandmarkDetector().detect(photo).landmarks
    net = IdentityNet().to(device)
    rows = []
    for batch in (1, 8):
        images = (torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255.0).repeat(batch, 1, 1, 1).to(device)
        marks = torch.from_numpy(landmarks).float()[None].repeat(batch, 1, 1).to(device)
        chips = net.chips(images, marks).detach()

        def chip_forward(chips=chips):
            with torch.no_grad():
                net.resnet(chips)

        def chip_backward(chips=chips):
            x = chips.clone().requires_grad_(True)
            net.resnet(x).square().sum().backward()

        def full_forward(images=images, marks=marks):
            with torch.no_grad():
                net(images, marks)

        def full_backward(images=images, marks=marks):
            x = images.clone().requires_grad_(True)
            net(x, marks).square().sum().backward()

        rows.append(
            (
                batch,
                median_ms_per_face(chip_forward, batch, args.repeats, sync),
                median_ms_per_face(chip_backward, batch, args.repeats, sync),
                median_ms_per_face(full_forward, batch, args.repeats, sync),
                median_ms_per_face(full_backward, batch, args.repeats, sync),
            )
        )
    dlib_model = load_identity_model("dlib")
    dlib_ms = None
    if dlib_model is not None:
        dlib_ms = median_ms_per_face(lambda: dlib_model.descriptor(photo, landmarks), 1, args.repeats, lambda: None)

    print(f"device {device}, {args.threads} threads, torch {torch.__version__}; ms per face, median of {args.repeats}")
    print()
    print("| batch | net forward | net forward+backward | align+net forward | align+net forward+backward |")
    print("|---|---|---|---|---|")
    for batch, *ms in rows:
        print(f"| {batch} | " + " | ".join(f"{m:.1f}" for m in ms) + " |")
    if dlib_ms is not None:
        print(f"\ndlib compute_face_descriptor (5-point predictor + chip + net, 1 face): {dlib_ms:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
