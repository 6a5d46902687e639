"""dlib's aligned face chip, differentiable and driven by our MediaPipe landmarks.

dlib's ``get_face_chip_details(shape, size=150, padding=0.25)`` maps five landmarks (outer
and inner corners of both eyes, the base of the nose) onto fixed positions of a mean face,
padded by ``padding`` of the face width on each side, with the least-squares similarity
transform; ``extract_image_chip`` then resamples the image (bilinear, after a 2x pyramid
for large faces). Here the same geometry is computed in torch from MediaPipe landmarks
and the image is resampled with ``grid_sample``, after average-pooling halvings while the
face is more than twice the chip's size, so gradients reach both the pixels and the
landmarks.

The five MediaPipe indices were chosen by comparing with dlib's 5-point predictor on the
sample photos, their mirrors and rotations (mean error 1.5-2.7 % of the eye distance).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# dlib's 5-point mean face (get_face_chip_details), x right / y down in [0, 1], in dlib's
# point order: right-hand eye outer, inner corner; left-hand eye outer, inner; nose base.
DLIB_MEAN_FACE_5 = (
    (0.8595674595992, 0.2134981538014),
    (0.6460604764104, 0.2289674387677),
    (0.1205750620789, 0.2137274526848),
    (0.3340850613712, 0.2290642403242),
    (0.4901123135679, 0.6277975316475),
)
# The MediaPipe landmarks standing in for dlib's five (same order, image-right eye first).
MEDIAPIPE_FIVE = (263, 382, 33, 155, 2)
DEFAULT_PADDING = 0.25


def five_points(landmarks: torch.Tensor) -> torch.Tensor:
    """dlib's five alignment points ``(B, 5, 2)`` from MediaPipe landmarks ``(B, 478, 2|3)`` (pixels)."""
    if landmarks.ndim != 3 or landmarks.shape[1] < max(MEDIAPIPE_FIVE) + 1 or landmarks.shape[2] not in (2, 3):
        raise ValueError(f"landmarks must be (B, 478, 2|3) pixels, got {tuple(landmarks.shape)}")
    return landmarks[:, list(MEDIAPIPE_FIVE), :2]


def similarity_lstsq(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Least-squares similarity (rotation, uniform scale, translation) taking ``source
    (B, N, 2)`` to ``target (B, N, 2)``, as a ``(B, 2, 3)`` affine matrix; differentiable."""
    ms, mt = source.mean(dim=1, keepdim=True), target.mean(dim=1, keepdim=True)
    s, t = source - ms, target - mt
    norm = (s**2).sum(dim=(1, 2)).clamp_min(1e-12)
    a = (s * t).sum(dim=(1, 2)) / norm
    b = (s[..., 0] * t[..., 1] - s[..., 1] * t[..., 0]).sum(dim=1) / norm
    rot = torch.stack([torch.stack([a, -b], dim=-1), torch.stack([b, a], dim=-1)], dim=-2)  # (B, 2, 2)
    shift = mt[:, 0] - (rot @ ms[:, 0, :, None])[..., 0]
    return torch.cat([rot, shift[..., None]], dim=-1)


def chip_to_image(points: torch.Tensor, *, size: int = 150, padding: float = DEFAULT_PADDING) -> torch.Tensor:
    """The ``(B, 2, 3)`` map from chip pixel coordinates (integer = pixel centre, as in
    dlib) to image pixel coordinates, for dlib's five points ``(B, 5, 2)``."""
    mean = torch.tensor(DLIB_MEAN_FACE_5, dtype=points.dtype, device=points.device)
    chip_points = (padding + mean) / (2 * padding + 1) * size
    fit = similarity_lstsq(chip_points.expand(points.shape[0], -1, -1), points)
    # dlib keeps only the fit's angle, scale and the image of the chip centre (size/2): a
    # rectangle of side size * scale whose corners map to chip pixels 0 and size - 1.
    scale = fit[:, :, 0].norm(dim=1)
    stretch = (size * scale - 1.0) / ((size - 1) * scale)
    linear = fit[:, :, :2] * stretch[:, None, None]
    centre = fit[:, :, :2] @ fit.new_full((2, 1), size / 2.0) + fit[:, :, 2:]
    shift = centre - linear @ fit.new_full((2, 1), (size - 1) / 2.0)
    return torch.cat([linear, shift], dim=-1)


def pyramid_down(image: torch.Tensor) -> torch.Tensor:
    """Halve ``(B, C, H, W)`` with a separable 5-tap binomial filter [1 4 6 4 1] / 16
    (reflected borders); output pixel j is centred on input pixel 2 j."""
    c = image.shape[1]
    taps = image.new_tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
    padded = F.pad(image, (2, 2, 2, 2), mode="reflect")
    rows = F.conv2d(padded, taps.view(1, 1, 5, 1).expand(c, 1, 5, 1), stride=(2, 1), groups=c)
    return F.conv2d(rows, taps.view(1, 1, 1, 5).expand(c, 1, 1, 5), stride=(1, 2), groups=c)


def extract_chips(images: torch.Tensor, transform: torch.Tensor, *, size: int = 150) -> torch.Tensor:
    """Resample ``images (B, C, H, W)`` into ``(B, C, size, size)`` chips through
    ``transform (B, 2, 3)`` (chip pixel -> image pixel). Any value range; bilinear, with
    2x average-pool halvings of the image first while a chip pixel spans more than 2 image
    pixels (anti-aliasing, like dlib's pyramid). Differentiable in images and transform."""
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got {tuple(images.shape)}")
    scale = transform[:, :, :2].detach().norm(dim=1).mean(dim=1)  # image pixels per chip pixel
    chips = []
    for i in range(images.shape[0]):
        image, tf = images[i : i + 1], transform[i]
        level = 0
        while scale[i] / 2**level > 2.0 and min(image.shape[-2:]) >= 8:
            image = pyramid_down(image)
            level += 1
        # Level-l pixel j is centred on level-0 pixel 2^l j.
        tf = tf * 0.5**level
        h, w = image.shape[-2:]
        ys, xs = torch.meshgrid(
            torch.arange(size, dtype=tf.dtype, device=tf.device), torch.arange(size, dtype=tf.dtype, device=tf.device), indexing="ij"
        )
        grid_pix = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1) @ tf.T  # (size, size, 2) image pixels
        grid = torch.stack([(grid_pix[..., 0] + 0.5) / w * 2 - 1, (grid_pix[..., 1] + 0.5) / h * 2 - 1], dim=-1)
        chips.append(F.grid_sample(image, grid[None], mode="bilinear", padding_mode="zeros", align_corners=False))
    return torch.cat(chips, dim=0)


def face_chips(images: torch.Tensor, landmarks: torch.Tensor, *, size: int = 150, padding: float = DEFAULT_PADDING) -> torch.Tensor:
    """dlib-aligned chips ``(B, C, size, size)`` of ``images (B, C, H, W)`` from MediaPipe
    landmarks ``(B, 478, 2|3)`` in pixels."""
    return extract_chips(images, chip_to_image(five_points(landmarks), size=size, padding=padding), size=size)
