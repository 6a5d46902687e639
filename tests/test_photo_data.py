"""Real photos as stage-2/3 training data: ``hifialbedo prepare`` and ``PhotoUVFolder``.

The photo folder is made of the two samples, each as taken, mirrored and shifted (three
"photos" of one person), in VGGFace2-style person folders, plus a flat grey image without a
face. It is prepared once per module (identities layout, 256 px crops); a tiny synthetic set
(64 px photos, 32 px UV) gives the reference items. torch runs on one thread (shared CPU).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from hifialbedo.cli import main
from hifialbedo.io.errors import InputError
from hifialbedo.io.images import read_photo
from hifialbedo.ops.colour import srgb_to_linear
from hifialbedo.training.photo_data import PHOTO_KEYS, PhotoUVFolder, face_crop, prepare_photos, read_photo_index
from hifialbedo.training.stage2_data import PairedTextures, stage2_dataset
from hifialbedo.training.stage3 import stage3_config, stage3_dataset
from hifialbedo.training.synth_data import SynthUVPhotos

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SIZE, UV, SYNTH_SIZE = 256, 32, 64
PERSONS = {"astro": "astronaut.png", "grace": "grace_hopper.jpg"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _write(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))


def _source_folder(root: Path) -> Path:
    """root/<person>/{a.png, b_mirrored.png, c_shifted.jpg}, and root/grace/grey.png (no face)."""
    for person, name in PERSONS.items():
        pixels = read_photo(SAMPLES / name).pixels
        _write(root / person / "a.png", pixels)
        _write(root / person / "b_mirrored.png", pixels[:, ::-1])
        _write(root / person / "c_shifted.jpg", pixels[:, 40:])
    _write(root / "grace" / "grey.png", np.full((200, 160, 3), 128, np.uint8))
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory, models) -> SimpleNamespace:
    from hifialbedo.synth import PRESETS, write_dataset

    tmp = tmp_path_factory.mktemp("photo_data")
    src = _source_folder(tmp / "src")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = prepare_photos(src, tmp / "prepared", size=SIZE, layout="identities", detector=models.detector)
    synth = write_dataset(tmp / "synth", replace(PRESETS["tiny"], n_identities=3, renders_per_identity=2, image_size=SYNTH_SIZE, uv_size=UV))
    return SimpleNamespace(
        tmp=tmp, src=src, dst=tmp / "prepared", index=index, warnings=[str(w.message) for w in caught], synth=synth, detector=models.detector
    )


# --------------------------------------------------------------------------- prepare


def test_prepare_round_trip(world):
    index = read_photo_index(world.dst)
    assert index == world.index
    assert index["layout"] == "identities" and index["size"] == SIZE
    assert index["counts"] == {"images": 7, "photos": 6, "skipped": 1, "persons": 2}
    assert index["persons"] == ["astro", "grace"]
    assert [(p["source"], p["person"]) for p in index["photos"]] == [
        (f"{person}/{name}", person) for person in PERSONS for name in ("a.png", "b_mirrored.png", "c_shifted.jpg")
    ]
    assert index["skipped"] == [{"source": "grace/grey.png", "reason": "no face found"}]
    assert len(world.warnings) == 1 and "skipped 1 of 7 image(s): grace/grey.png (no face found)" in world.warnings[0]
    assert sorted(p.name for p in world.dst.iterdir()) == ["images", "landmarks.npy", "photos.json"]
    assert not [p for p in world.tmp.iterdir() if p.name.startswith(".")]  # no temporary folder left

    marks = np.load(world.dst / "landmarks.npy")
    assert marks.shape == (6, 478, 3) and marks.dtype == np.float32
    for k, photo in enumerate(index["photos"]):
        crop = cv2.cvtColor(cv2.imread(str(world.dst / photo["file"])), cv2.COLOR_BGR2RGB)
        assert crop.shape == (SIZE, SIZE, 3)
        xy = marks[k, :, :2]
        # The whole face is in, with context around it (face box = half the side).
        assert xy.min() > 0.15 * SIZE and xy.max() < 0.85 * SIZE, (xy.min(), xy.max())
        found = world.detector.detect(crop).landmarks
        error = np.linalg.norm(found[:, :2] - xy, axis=1)
        assert error.mean() < 2.5 and np.median(error) < 2.0, (photo["source"], error.mean())
        assert np.abs(found[:, 2] - marks[k, :, 2]).mean() < 3.0  # z scaled like x


def test_face_crop_maps_landmarks_and_pads_black():
    image = np.full((100, 120, 3), 100, np.uint8)
    image[40:60, 10:30] = 255  # a white square near the left edge
    marks = np.zeros((478, 3))
    marks[:, :2] = [[10.0, 40.0], [30.0, 60.0]] * 239  # face box (10, 40)-(30, 60): side 20
    marks[:, 2] = 4.0
    crop, moved = face_crop(image, marks, 80, face_fraction=0.5)  # the 40 px box from (0, 30), scale 2
    assert crop.shape == (80, 80, 3)
    assert np.allclose(moved[:2, :2], [[20.0, 20.0], [60.0, 60.0]]) and np.allclose(moved[:, 2], 8.0)
    assert (crop[22:58, 22:58] == 255).all() and (crop[:, :18] == 100).all()  # the square where the landmarks say
    shifted = marks - [[10.0, 0.0, 0.0]]  # the box now starts 10 px left of the image
    edge, moved = face_crop(image, shifted, 80)
    assert np.allclose(moved[:2, :2], [[20.0, 20.0], [60.0, 60.0]])
    assert (edge[:, :18] == 0).all() and (edge[:, 22:38] == 100).all() and (edge[22:58, 42:78] == 255).all()


def test_prepare_errors(world, tmp_path):
    grey = tmp_path / "grey"
    _write(grey / "p" / "grey.png", np.full((64, 64, 3), 128, np.uint8))
    (grey / "p" / "empty.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match=r"grey: no usable face in any of its 2 image\(s\)"):
        prepare_photos(grey, tmp_path / "out", layout="identities", detector=world.detector)
    assert not (tmp_path / "out").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(ValueError, match="nowhere: folder does not exist"):
        prepare_photos(tmp_path / "nowhere", tmp_path / "out", detector=world.detector)
    (tmp_path / "none").mkdir()
    with pytest.raises(ValueError, match=r"none: no images \(.jpg"):
        prepare_photos(tmp_path / "none", tmp_path / "out", detector=world.detector)
    with pytest.raises(ValueError, match="must lie outside"):
        prepare_photos(world.src, world.src / "prepared", detector=world.detector)
    with pytest.raises(ValueError, match="layout must be one of"):
        prepare_photos(world.src, tmp_path / "out", layout="persons", detector=world.detector)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="already exists"):
        prepare_photos(world.src, world.dst, detector=world.detector)
    assert read_photo_index(world.dst) == world.index  # untouched

    # An image outside any person folder is skipped (identities); layout images takes every image.
    src = tmp_path / "loose"
    _write(src / "grace.png", read_photo(SAMPLES / "grace_hopper.jpg").pixels)
    _write(src / "p" / "astro.png", read_photo(SAMPLES / "astronaut.png").pixels)
    with pytest.warns(UserWarning, match=r"skipped 1 of 2 image\(s\): grace.png \(not in a person folder\)"):
        index = prepare_photos(src, tmp_path / "out", size=64, layout="identities", detector=world.detector)
    assert [p["source"] for p in index["photos"]] == ["p/astro.png"] and index["persons"] == ["p"]
    index = prepare_photos(src, tmp_path / "out", size=64, overwrite=True, detector=world.detector)
    assert [p["source"] for p in index["photos"]] == ["grace.png", "p/astro.png"] and index["layout"] == "images"
    assert "person" not in index["photos"][0] and index["persons"] == []


# --------------------------------------------------------------------------- the dataset


def _same_layout(mine: dict, reference: dict, keys) -> None:
    for key in keys:
        a, b = mine[key], reference[key]
        if torch.is_tensor(b):
            assert torch.is_tensor(a) and a.shape == b.shape and a.dtype == b.dtype, (key, a, b.shape, b.dtype)
        else:
            assert type(a) is type(b) and (not isinstance(b, list) or [type(x) for x in a] == [type(x) for x in b]), key


def test_items_have_the_synthetic_items_keys_shapes_and_dtypes(world):
    reference = SynthUVPhotos(world.synth, split="train", uv_size=UV)[0]
    photos = PhotoUVFolder(world.dst, uv_size=UV, image_size=SYNTH_SIZE)
    assert len(photos) == 6
    item = photos[4]
    assert set(item) == set(PHOTO_KEYS) and set(PHOTO_KEYS) <= set(reference)
    _same_layout(item, reference, PHOTO_KEYS)
    assert not any("albedo" in key for key in item)
    assert (item["identity"], item["render"]) == (1, 1)  # grace (persons[1]), her second photo
    stored = np.load(world.dst / "landmarks.npy")[4]
    assert torch.allclose(item["landmarks"], torch.from_numpy(stored) * (SYNTH_SIZE / SIZE))
    assert torch.allclose(item["photo"], srgb_to_linear(item["photo_srgb"]), atol=1e-5)
    assert 0 <= float(item["photo_uv"].min()) and float(item["photo_uv"].max()) <= 1
    # The unwrap sees a face: most of the layout's face region is observed, and it is not flat.
    conf, face = item["photo_uv_confidence"], item["uv_mask"] > 0
    assert float(conf[face].mean()) > 0.3 and float(item["photo_uv"][:, face[0]].std()) > 0.05
    assert photos[4]["photo_uv"] is item["photo_uv"]  # cached

    full = PhotoUVFolder(world.dst, uv_size=UV)[0]
    assert full["photo_srgb"].shape == (3, SIZE, SIZE) and torch.equal(full["landmarks"], torch.from_numpy(np.load(world.dst / "landmarks.npy")[0]))


def test_groups_hold_one_person_and_are_deterministic(world):
    reference = SynthUVPhotos(world.synth, split="train", uv_size=UV, group_size=2)[0]
    groups = PhotoUVFolder(world.dst, uv_size=UV, group_size=2, image_size=SYNTH_SIZE)
    assert len(groups) == 2  # 3 photos per person: one group of 2 each, one photo left over
    item = groups[1]
    _same_layout(item, reference, PHOTO_KEYS)
    assert item["photo_uv"].shape == (2, 3, UV, UV) and item["landmarks"].shape == (2, 478, 3)
    persons = world.index["persons"]
    for g in range(len(groups)):
        members = groups.members[g]
        assert len(set(members)) == 2
        assert {world.index["photos"][k]["person"] for k in members} == {persons[groups[g]["identity"]]}
        assert groups[g]["render"] == [groups.photo_ids[k][1] for k in members]
    assert [groups[g]["identity"] for g in range(2)] == [0, 1]
    again = PhotoUVFolder(world.dst, uv_size=UV, group_size=2, seed=0)
    assert again.members == groups.members
    seeds = {tuple(map(tuple, PhotoUVFolder(world.dst, uv_size=UV, group_size=2, seed=s).members)) for s in range(8)}
    assert len(seeds) > 1  # the draw depends on the seed

    with pytest.warns(UserWarning, match=r"skipped 2 person\(s\) with < 4 photos"), pytest.raises(ValueError, match="no person with >= 4 photos"):
        PhotoUVFolder(world.dst, uv_size=UV, group_size=4)
    with pytest.raises(ValueError, match="not a prepared photo folder"):
        PhotoUVFolder(world.src, uv_size=UV)


def test_stage_datasets_take_photos(world, tmp_path):
    textures = tmp_path / "textures"
    for k, value in enumerate((40, 200)):
        _write(textures / f"t{k}.png", np.full((48, 48, 3), value, np.uint8))
    with pytest.raises(ValueError, match="stage 2 on real photos needs real UV textures"):
        stage2_dataset([("photos", world.dst)], UV)
    paired = stage2_dataset([("photos", world.dst), ("uv", textures)], UV)
    assert isinstance(paired, PairedTextures) and len(paired) == 6
    batch = default_collate([paired[0], paired[3]])
    assert batch["photo"].shape == (2, 3, SIZE, SIZE) and float(batch["texture"][1].mean()) == pytest.approx(200 / 255, abs=1e-3)

    mixed = stage2_dataset([("synth", world.synth), ("photos", world.dst)], UV)
    n_synth = len(SynthUVPhotos(world.synth, split="train", uv_size=UV))
    assert len(mixed) == n_synth + 6
    batch = default_collate([mixed[0], mixed[n_synth]])  # a synthetic and a real photo in one batch
    assert batch["photo_srgb"].shape == (2, 3, SYNTH_SIZE, SYNTH_SIZE) and batch["texture"].shape == (2, 3, UV, UV)
    assert set(batch) == {*PHOTO_KEYS, "texture"}
    synth_albedo = SynthUVPhotos(world.synth, split="train", uv_size=UV)[0]["albedo_uv_srgb"]
    assert torch.allclose(mixed[0]["texture"], synth_albedo, atol=1e-6)  # the synthetic albedos are the real side

    config = replace(stage3_config("tiny"), uv_size=UV, group_size=2)
    groups = stage3_dataset([("photos", world.dst)], config)
    assert len(groups) == 2 and groups[0]["photo_uv"].shape == (2, 3, UV, UV)
    both = stage3_dataset([("synth", world.synth), ("photos", world.dst)], config)
    batch = default_collate([both[0], both[len(both) - 1]])
    assert batch["landmarks"].shape == (2, 2, 478, 3) and batch["photo_srgb"].shape == (2, 2, 3, SYNTH_SIZE, SYNTH_SIZE)
    images = tmp_path / "images_layout"
    prepare_photos(world.src / "astro", images, size=64, detector=world.detector)
    with pytest.raises(ValueError, match=r"images_layout: prepared with layout 'images'.*--layout identities"):
        stage3_dataset([("photos", images)], config)


# --------------------------------------------------------------------------- training


@pytest.mark.slow
def test_stages_2_and_3_train_on_prepared_photos(world, tmp_path):
    """A 2-step stage 1 on the crops (for a checkpoint), then 2 steps each of stages 2 and 3 on the prepared folder."""
    from hifialbedo.models.saved import load_checkpoint
    from hifialbedo.training.metrics import read_metrics
    from hifialbedo.training.run import train

    engine = ["train.max_steps=2", "train.batch_size=2", "train.accelerator=cpu", "train.num_workers=0",
              "train.sample_every=0", "train.log_every=1", "train.ckpt_every=2"]  # fmt: skip
    stage1 = train(
        "stage1",
        data=[f"images:{world.dst / 'images'}"],
        overrides=[*engine, "stage1.vq.image_size=32", "stage1.vq.codebook_size=32", "stage1.vq.embed_dim=4", "stage1.lpips_weight=0"],
        out_dir=tmp_path / "s1",
    )
    textures = tmp_path / "textures"
    for k in range(3):
        _write(textures / f"t{k}.png", np.full((32, 32, 3), 60 * (k + 1), np.uint8))
    stage2 = train(
        "stage2",
        data=[f"photos:{world.dst}", f"uv:{textures}"],
        overrides=[*engine, "stage2.use_identity=false", "stage2.lpips_weight=0", "stage2.adversarial_start=1"],
        out_dir=tmp_path / "s2",
        init=stage1.checkpoint,
    )
    assert stage2.step == 2
    rows = read_metrics(tmp_path / "s2" / "metrics.csv")
    assert [r["step"] for r in rows] == [1, 2]
    assert all(math.isfinite(r[k]) for r in rows for k in ("l1", "z_distance", "loss/generator"))
    assert rows[1]["adv_weight"] > 0 and rows[1]["d_latent"] != 0.0  # the critics ran on real photos and textures

    stage3 = train(
        "stage3",
        data=[f"photos:{world.dst}"],
        overrides=[*engine, "train.batch_size=1", "stage3.group_size=2", "stage3.lpips_weight=0"],
        out_dir=tmp_path / "s3",
        init=stage2.checkpoint,
    )
    assert stage3.step == 2 and load_checkpoint(stage3.checkpoint)["stage_config"]["stage"] == "stage3"
    rows = read_metrics(tmp_path / "s3" / "metrics.csv")
    assert all(math.isfinite(r["loss/l1"]) and math.isfinite(r["loss/gid"]) for r in rows) and "albedo_mae" not in rows[0]


# --------------------------------------------------------------------------- command line


def test_cli_prepare(world, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["prepare", str(world.src), "-o", str(out), "--layout", "identities", "--size", "64", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert f"wrote {out}/ (6 face crop(s) of 2 person(s) at 64 px; train with --data photos:{out})" in captured.out
    assert "hifialbedo: warning: skipped 1 of 7 image(s): grace/grey.png (no face found)" in captured.err
    assert read_photo_index(out)["counts"]["photos"] == 6

    cases = [
        (["prepare", str(world.src), "-o", str(out)], f"hifialbedo: error: {out}: already exists (pass --overwrite to replace it)"),
        (["prepare", str(tmp_path / "nowhere"), "-o", str(tmp_path / "o2")], "nowhere: folder does not exist"),
        (["prepare", str(world.src), "-o", str(tmp_path / "o2"), "--size", "8"], "--size must be between 32 and 4096, got 8"),
    ]
    grey = tmp_path / "grey"
    _write(grey / "grey.png", np.full((64, 64, 3), 128, np.uint8))
    cases.append((["prepare", str(grey), "-o", str(tmp_path / "o3"), "--quiet"], r"grey: no usable face in any of its 1 image(s)"))
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.startswith("hifialbedo: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()


def test_train_data_help_lists_each_stages_kinds(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "identities:DIR" not in help_text
    assert "stage2: synth:DIR, photos:DIR" in help_text and "stage3: synth:DIR, photos:DIR" in help_text
