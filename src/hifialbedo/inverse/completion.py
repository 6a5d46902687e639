"""Filling occluded and low-confidence texels: mirror texel first, then inpainting.

FTIM's symmetry idea without the network: a face's albedo is nearly mirror-symmetric, so
a texel hidden or poorly seen (turned away, under a highlight or a shadow) takes its
mirror texel's value where that one is trusted more. What neither side saw is inpainted
by push-pull (a masked Gaussian pyramid: averages from coarser levels fill the holes of
finer ones), and every texel is blended by its confidence so that no seam appears where
measured, mirrored and inpainted texels meet.
"""

from __future__ import annotations

import cv2
import numpy as np


def push_pull(values: np.ndarray, weights: np.ndarray, *, min_size: int = 4) -> np.ndarray:
    """Fill a map ``(S, S, C)`` where ``weights (S, S)`` in [0, 1] are low, from the rest.

    Returns a map defined everywhere (also outside the face), equal to ``values`` where
    the weight is 1 and a smooth extension of them where it is 0.
    """
    w = weights.astype(np.float32)
    vw = values.astype(np.float32, copy=False) * w[..., None]
    pyramid = [(vw, w)]
    while min(pyramid[-1][1].shape) > min_size:
        vw, w = pyramid[-1]
        pyramid.append((cv2.pyrDown(vw), cv2.pyrDown(w)))
    vw, w = pyramid[-1]
    filled = vw / np.maximum(w, 1e-6)[..., None]
    if not (w > 1e-6).any():
        filled[:] = 0.0
    else:
        filled[w <= 1e-6] = filled[w > 1e-6].mean(axis=0)
    for vw, w in reversed(pyramid[:-1]):
        up = cv2.pyrUp(filled, dstsize=(w.shape[1], w.shape[0]))
        if up.ndim == 2:
            up = up[..., None]
        # A blurred weight of ~0.5 or more means the level has its own data here.
        alpha = np.clip(w * 2.0, 0.0, 1.0)[..., None]
        own = vw / np.maximum(w, 1e-6)[..., None]
        # alpha * own + (1 - alpha) * up, in place.
        own -= up
        own *= alpha
        own += up
        filled = own
    return filled


def feather_confidence(confidence: np.ndarray, face_mask: np.ndarray, radius: float) -> np.ndarray:
    """``confidence (S, S)`` eroded by ``radius`` texels (a texel is trusted no more than the
    least trusted texel within that radius), then smoothed (a Gaussian of a third of it, so
    the smoothing does not hand the eroded band its trust back).

    A distrusted patch (a cast shadow, a highlight, a glasses frame) has an edge still darker
    or brighter than the skin but under the outlier threshold; kept as measured, that edge
    shows as a rim around the filled patch. Eroded, the edge is filled with the patch, and
    the measured and filled texels blend over a band instead of meeting at a line. Outside
    ``face_mask (S, S)`` counts as trusted here, so that the face's border is not eaten. A
    radius under half a texel changes nothing.
    """
    r = round(radius)
    if r < 1:  # under half a texel (a small map): nothing to widen
        return confidence
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    eroded = cv2.erode(np.where(face_mask, confidence, 1.0).astype(np.float32), kernel)
    return np.where(face_mask, cv2.GaussianBlur(eroded, (0, 0), radius / 3.0), 0.0).astype(np.float32)


def complete_uv(
    albedo: np.ndarray, confidence: np.ndarray, face_mask: np.ndarray, *, trusted: float = 0.5, feather: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Complete a UV map ``(S, S, C)`` with confidence ``(S, S)`` over the face ``(S, S)`` bool.

    ``trusted``: the confidence from which a texel is kept as measured; ``feather``: the
    radius, in texels, by which distrusted patches are first widened and their edges
    smoothed (``feather_confidence``; 0: not at all). Returns the
    completed map (defined everywhere; outside the face it is a smooth padding, useful
    against bleeding when the texture is mip-mapped) and the completed confidence
    ``(S, S)``: the trust in each texel after the mirror step.
    """
    c = np.where(face_mask, np.clip(confidence / trusted, 0.0, 1.0), 0.0).astype(np.float32)
    c = feather_confidence(c, face_mask, feather)
    # The mirror of texel (i, j) is (i, S - 1 - j) (``mesh.topology.uv_mirror_texels``): a flip
    # of the columns, a view rather than a gather.
    mirrored = albedo[:, ::-1]
    c_mirror = c[:, ::-1]
    w_mirror = np.clip(c_mirror - c, 0.0, 1.0)  # only where the mirror is trusted more
    total = c + w_mirror
    # (albedo c + mirrored w_mirror) / total, in place (the maps are the size of the layout).
    combined = albedo * c[..., None]
    combined += mirrored * w_mirror[..., None]
    combined /= np.maximum(total, 1e-6)[..., None]
    combined_conf = np.maximum(c, c_mirror) * face_mask
    smooth = push_pull(combined, combined_conf)
    k = combined_conf[..., None]
    # k combined + (1 - k) smooth, in place.
    completed = np.multiply(combined, k, out=combined)
    completed += np.multiply(smooth, 1.0 - k, out=smooth)
    return completed.astype(np.float32, copy=False), combined_conf.astype(np.float32, copy=False)
