"""Run the toy GAN stage of tests/test_training_engine.py through ``fit`` (launched by the tests).

Usage: python run_toy.py OUT_DIR [--noise X] [--kill-at STEP] [key=value ...]  (TrainConfig overrides)
Under ``torch.distributed.run`` set ``devices=N strategy=ddp``; Fabric picks the ranks up from torchrun.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from test_training_engine import ToyGAN, toy_dataset

from hifialbedo.training.config import load_config
from hifialbedo.training.engine import fit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--kill-at", type=int, default=None)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args()
    config = load_config(None, [f"out_dir={args.out_dir}", "accelerator=cpu", "num_workers=0", *args.overrides])
    fit(ToyGAN(noise=args.noise, kill_at=args.kill_at), toy_dataset(), config)


if __name__ == "__main__":
    main()
