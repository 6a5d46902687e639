"""Shared fixtures: the sample photos, their landmarks (detected once per session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GLOG_minloglevel", "2")
REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"


@pytest.fixture(scope="session")
def models():
    from hifialbedo.pipeline import Models

    return Models()


@pytest.fixture(scope="session")
def grace(models):
    """(uint8 sRGB image, (478, 3) landmarks) of samples/grace_hopper.jpg."""
    from hifialbedo.io.images import read_photo

    photo = read_photo(SAMPLES / "grace_hopper.jpg")
    return photo.pixels, models.detector.detect(photo.pixels).landmarks


@pytest.fixture(scope="session")
def astronaut(models):
    from hifialbedo.io.images import read_photo

    photo = read_photo(SAMPLES / "astronaut.png")
    return photo.pixels, models.detector.detect(photo.pixels).landmarks


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``):
    toy tensors gain nothing from more, and spinning threads on a shared 2-core CPU cost minutes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
