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
