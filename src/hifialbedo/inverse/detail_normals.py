"""Detail normals: shape from shading on top of the coarse mesh normals.

Model (per photo k, linear RGB, Lambertian, SH light ``L_k`` ``(9, 3)`` in its camera frame,
``ops.sh``): I = A * S_k(n). The coarse estimate divides the photo by the shading of the
mesh normal n0, so the albedo estimate A0 = I / S_k(n0) also holds every shading change
the mesh is too coarse to carry (wrinkles, folds, pores). The detail is a *height field*
h over the UV layout (head units, along n0): the detailed normal is

    n = normalize(n0 - grad_s h),   grad_s h = [T_u T_v] G^-1 (dh/du, dh/dv),

with T_u, T_v the surface tangents dP/du, dP/dv per texel and G their Gram matrix. To
first order in the tilt, log S(n) - log S(n0) = grad S(n0) . (-grad_s h) / S(n0): a
linear map of the height's UV gradient. The observation is the *high-pass* of the
luminance log ratio y = log lum(I) - log lum(S(n0)) (= log lum(A0) up to a constant):
the albedo is assumed to carry no high-frequency luminance on skin, the geometry no
low-frequency detail (the mesh owns it), so only the band above ``highpass_sigma`` moves
into the normals and the albedo keeps its colour and its low frequencies.

h minimises, over all photos together (different lights constrain different tangent
directions; their data terms simply add),

    sum_k sum_texels w_k (a_k . grad h - b_k)^2 + tilt_weight |grad h|^2 + (tilt_weight / sigma^2) h^2

with w_k = confidence x skin x a Cauchy weight on b_k (strong, sharp changes such as
eyebrows, glasses frames or lip edges are albedo, not small-angle shading). The last
term keeps h high-pass too (it decays over ``highpass_sigma``); the tilt term keeps n
close to n0. One sparse SPD solve (direct, ``ops.grid_solve``) per Gauss-Newton step; the
light and A are fixed. The solve runs on a grid of at most ``solve_size`` texels (a photo
rarely resolves more) and h is upsampled. Texels without trusted data (mirrored or
inpainted, hidden, not skin) get h from their neighbours through the smoothness term,
and the tilt is faded out by confidence, so they keep the coarse normal.

Consistency with the albedo: ``albedo_factor`` = S_k(n0) / S_k(n) per photo; multiplying
A0 by it gives A = I / S_k(n), so the detail explained by the normals leaves the albedo
(it is not in both).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import sparse

from hifialbedo.ops.colour import LUMA_WEIGHTS
from hifialbedo.ops.grid_solve import nested_dissection_order, solve_spd_ordered
from hifialbedo.ops.sh import SH_CONSTANTS, SHADING_FACTORS, sh_basis_rows, shade_basis_rows, shading_rows
from hifialbedo.ops.vectors import normalize_rows, row_norm


@dataclass(frozen=True)
class DetailConfig:
    """How the detail normals are estimated."""

    highpass_sigma: float = 1.0 / 24.0
    """Scale (UV units, Gaussian sigma) above which shading belongs to the mesh and the albedo."""
    fine_sigma: float = 1.0 / 256.0
    """Scale (UV units) below which luminance changes are left to the albedo (pixel noise,
    fine albedo texture): the band between this and ``highpass_sigma`` becomes geometry."""
    tilt_weight: float = 0.01
    """Weight of |grad h|^2 (small tilts), relative to the mean data weight."""
    robust_sigmas: float = 3.0
    """Cauchy width of the data weight, in robust sigmas of the high-passed log ratio."""
    min_robust_width: float = 0.15
    """Floor of that Cauchy width (log ratio): a clean photo must not reject its own detail."""
    solve_size: int = 256
    """Largest grid side the height field is solved on."""
    iterations: int = 1
    """Gauss-Newton steps."""
    min_confidence: float = 0.3
    """Texels below this unwrap confidence carry no data."""


@dataclass(frozen=True)
class DetailObservation:
    """One photo on the texels ``(N, ...)`` of a UV layout (camera frame of that photo)."""

    colour: np.ndarray  # (N, 3) linear RGB of the photo
    sh: np.ndarray  # (9, 3) SH radiance coefficients, linear RGB
    normals: np.ndarray  # (N, 3) unit coarse normals, camera frame
    tangents: np.ndarray | FaceTangents  # (N, 2, 3) dP/du, dP/dv per texel (head units per texel), camera frame
    confidence: np.ndarray  # (N,) in [0, 1]


@dataclass(frozen=True)
class DetailResult:
    normals: np.ndarray  # (N, 3) unit detailed normals, head frame
    height: np.ndarray  # (N,) head units, along the coarse normal
    albedo_factors: np.ndarray  # (K, N, 3): S_k(n0) / S_k(n) per photo


@dataclass(frozen=True)
class FaceTangents:
    """dP/du and dP/dv of each triangle ``(F, 2, 3)`` float32 (per texel step, v down) and the
    triangle of each texel of a UV layout ``(N,)``. The tangents are constant over a triangle,
    so what derives from them (their duals, their lengths) is computed per triangle and
    gathered: the same numbers as from the per-texel array (``texels``), in a fraction of the
    time. Accepted wherever per-texel tangents ``(N, 2, 3)`` are."""

    per_face: np.ndarray  # (F, 2, 3) float32
    face_of_texel: np.ndarray  # (N,) triangle index of each layout texel

    def texels(self) -> np.ndarray:
        """The per-texel tangents ``(N, 2, 3)`` float32."""
        return self.per_face[self.face_of_texel]

    def duals(self) -> np.ndarray:
        """``dual_tangents`` of the per-texel tangents ``(2, 3, N)``."""
        return np.take(dual_tangents(self.per_face), self.face_of_texel, axis=2)

    def median_length(self) -> float:
        """The median length of the 2N per-texel tangent vectors (np.median's value: the mean
        of the two middle ones), from the per-triangle lengths weighted by texel counts."""
        lengths = row_norm(self.per_face.reshape(-1, 3))  # (2F,)
        counts = np.repeat(np.bincount(self.face_of_texel, minlength=len(self.per_face)), 2)
        order = np.argsort(lengths, kind="stable")
        ends = np.cumsum(counts[order])  # sorted position just past each length's copies
        total = int(ends[-1])
        lo, hi = lengths[order[np.searchsorted(ends, [(total - 1) // 2, total // 2], side="right")]]
        return float(np.mean(np.array([lo, hi], np.float32)))


def face_tangents(layout, vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray) -> FaceTangents:
    """The ``FaceTangents`` of a mesh over ``layout`` (a ``render.uv_layout.UVLayout``):
    ``vertices`` ``(V, 3)`` in any frame, ``uv`` ``(V, 2)`` in [0, 1] (v down)."""
    p = np.asarray(vertices, np.float64)[faces]
    st = np.asarray(uv, np.float64)[faces] * layout.size
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    d1, d2 = st[:, 1] - st[:, 0], st[:, 2] - st[:, 0]
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    inv = np.where(np.abs(det) > 1e-12, 1.0 / np.where(det == 0, 1.0, det), 0.0)[:, None]
    dp_du = (e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) * inv
    dp_dv = (e2 * d1[:, 0:1] - e1 * d2[:, 0:1]) * inv
    return FaceTangents(np.stack([dp_du, dp_dv], axis=1).astype(np.float32), layout.face_of_texel)


def texel_tangents(layout, vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """``(N, 2, 3)`` dP/du and dP/dv (per texel step, v down) of each texel's triangle
    (``face_tangents`` gathered per texel; same arguments)."""
    return face_tangents(layout, vertices, faces, uv).texels()


def _duals(tangents: np.ndarray | FaceTangents) -> np.ndarray:
    return tangents.duals() if isinstance(tangents, FaceTangents) else dual_tangents(tangents)


def _median_length(tangents: np.ndarray | FaceTangents) -> float:
    if isinstance(tangents, FaceTangents):
        return tangents.median_length()
    return float(np.median(row_norm(tangents.reshape(-1, 3))))


def shading_gradient(normals: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """d S / d n of the SH shading ``S(n) = shading_basis(n) @ coefficients`` for one channel's
    coefficients ``(9,)`` (the polynomial's gradient in R^3) at normals ``(N, 3)``, as float32
    rows ``(3, N)`` (x, y, z components)."""
    c = (SHADING_FACTORS * np.asarray(coefficients, np.float64)).astype(np.float32)
    _, c1, c2, c3, c4 = (np.float32(k) for k in SH_CONSTANTS)
    x, y, z = (np.ascontiguousarray(normals[:, i], dtype=np.float32) for i in range(3))
    grad = np.empty((3, x.size), np.float32)
    grad[0] = c1 * c[3] + c2 * (c[4] * y + c[7] * z) + 2 * c4 * c[8] * x
    grad[1] = c1 * c[1] + c2 * (c[4] * x + c[5] * z) - 2 * c4 * c[8] * y
    grad[2] = c1 * c[2] + c2 * (c[5] * y + c[7] * x) + 6 * c3 * c[6] * z
    return grad


def _blur(values: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised (weighted) Gaussian blur of a map ``(S, S)``."""
    num = cv2.GaussianBlur(values * weights, (0, 0), sigma)
    den = cv2.GaussianBlur(weights, (0, 0), sigma)
    return num / np.maximum(den, 1e-6)


def _differences(mask: np.ndarray) -> tuple[sparse.csr_matrix, sparse.csr_matrix, np.ndarray]:
    """Forward differences along u (columns) and v (rows) over the texels of ``mask``:
    ``(n, n)`` each, a row zero where the neighbour is outside; and the texel indices."""
    size = mask.shape[0]
    flat = np.flatnonzero(mask)
    index = np.full(mask.size, -1, np.int64)
    index[flat] = np.arange(flat.size)
    rows, cols = np.divmod(flat, size)
    mats = []
    for dr, dc in ((0, 1), (1, 0)):
        r2, c2 = rows + dr, cols + dc
        ok = (r2 < size) & (c2 < size)
        nb = np.full(flat.size, -1, np.int64)
        nb[ok] = index[r2[ok] * size + c2[ok]]
        has = np.flatnonzero(nb >= 0)
        i = np.concatenate([has, has])
        j = np.concatenate([nb[has], has])
        v = np.concatenate([np.ones(has.size), -np.ones(has.size)])
        mats.append(sparse.csr_matrix((v, (i, j)), shape=(flat.size, flat.size)))
    return mats[0], mats[1], flat


def _grid_system(mask: np.ndarray) -> tuple[sparse.csr_matrix, sparse.csr_matrix, np.ndarray, sparse.csr_matrix]:
    """The solve grid's differences ``(n, n)`` along u and v, the flat indices of its texels and
    the Laplacian du^T du + dv^T dv, all in the grid's nested-dissection order (unknown i is
    texel ``flat[i]``; ``ops.grid_solve``), kept per mask (the face mask of a solve grid is
    the same in every run)."""
    key = (mask.shape, mask.tobytes())
    if key not in _GRID_SYSTEMS:
        du, dv, flat = _differences(mask)
        rows, cols = np.divmod(flat, mask.shape[1])
        order = nested_dissection_order(rows, cols)
        du, dv = (sparse.csr_matrix(d[order][:, order]) for d in (du, dv))
        _GRID_SYSTEMS.clear()  # one solve grid per process in practice; keep memory flat
        _GRID_SYSTEMS[key] = (du, dv, flat[order], (du.T @ du + dv.T @ dv).tocsr())
    return _GRID_SYSTEMS[key]


_GRID_SYSTEMS: dict = {}


def _tilt(height_map: np.ndarray, tangents: np.ndarray, layout) -> np.ndarray:
    """-grad_s h ``(N, 3)`` at the layout's texels (central differences of a map ``(S, S)``)."""
    return _tilt_dual(_uv_gradient(height_map, layout), _duals(tangents))


def _uv_gradient(height_map: np.ndarray, layout) -> tuple[np.ndarray, np.ndarray]:
    """(dh/du, dh/dv) ``(N,)`` each at the layout's texels: central differences of a map ``(S, S)``."""
    h_v, h_u = np.gradient(height_map)
    return h_u[layout.rows, layout.cols], h_v[layout.rows, layout.cols]


def _tilt_dual(gradient: tuple[np.ndarray, np.ndarray], dual: np.ndarray) -> np.ndarray:
    """``_tilt`` from the height's UV gradient (``_uv_gradient``) and the tangents' duals
    ``(2, 3, N)`` (``dual_tangents``)."""
    g_u, g_v = gradient
    tilt = np.empty((g_u.size, 3), np.float32)
    for c in range(3):
        tilt[:, c] = -(g_u * dual[0, c] + g_v * dual[1, c])
    return tilt


def _tilted_rows(normals: np.ndarray, gradient: tuple[np.ndarray, np.ndarray], dual: np.ndarray, fade: np.ndarray) -> np.ndarray:
    """normalize(n0 + fade * _tilt) as unit rows ``(3, N)``: ``normals`` ``(N, 3)``, the height's
    UV ``gradient`` and the ``dual`` tangents as for ``_tilt_dual``, ``fade`` ``(N,)``; the
    same numbers as those steps on ``(N, 3)`` arrays, in contiguous passes."""
    g_u, g_v = gradient
    rows = np.empty((3, g_u.size), np.float32)
    for c in range(3):
        tilt = g_u * dual[0, c]
        tilt += g_v * dual[1, c]
        tilt *= fade
        np.subtract(normals[:, c], tilt, out=rows[c])
    length = rows[0] * rows[0]
    length += rows[1] * rows[1]
    length += rows[2] * rows[2]
    rows /= np.maximum(np.sqrt(length), 1e-8)
    return rows


def dual_tangents(tangents: np.ndarray) -> np.ndarray:
    """D = [T_u T_v] G^-1 per texel, G the tangents' Gram matrix ``(2, 2)``, as float32
    ``(2, 3, N)`` (D_u, D_v by component: contiguous rows for the per-texel products): the
    surface gradient of a height field is grad_s h = D_u dh/du + D_v dh/dv, and
    G^-1 [T_u T_v]^T g = D^T g for any vector g (G is symmetric). ``tangents`` ``(N, 2, 3)``
    (or per triangle, ``FaceTangents.per_face``)."""
    t = np.ascontiguousarray(np.moveaxis(np.asarray(tangents, np.float32), 0, -1))  # (2, 3, N)
    a = t[0, 0] * t[0, 0] + t[0, 1] * t[0, 1] + t[0, 2] * t[0, 2]
    b = t[0, 0] * t[1, 0] + t[0, 1] * t[1, 1] + t[0, 2] * t[1, 2]
    d = t[1, 0] * t[1, 0] + t[1, 1] * t[1, 1] + t[1, 2] * t[1, 2]
    det = np.maximum(a * d - b * b, 1e-20)
    a, b, d = a / det, b / det, d / det
    dual = np.empty_like(t)
    for c in range(3):
        dual[0, c] = d * t[0, c] - b * t[1, c]
        dual[1, c] = a * t[1, c] - b * t[0, c]
    return dual


def estimate_detail_normals(
    layout,
    observations: Sequence[DetailObservation],
    object_normals: np.ndarray,
    object_tangents: np.ndarray,
    skin: np.ndarray,
    *,
    config: DetailConfig = DetailConfig(),
    map_photos: Callable = map,
) -> DetailResult:
    """Detailed head-frame normals from one or more photos (see the module docstring).

    ``object_normals`` ``(N, 3)`` unit coarse normals and ``object_tangents`` ``(N, 2, 3)``
    (``texel_tangents``, or their ``FaceTangents``) in the head frame; ``skin`` ``(N,)`` bool or weight in [0, 1]: where
    high-frequency luminance is trusted to be shading. Photos' tangents must be in the same
    units (head units) so that one height field serves all. ``map_photos``: how the per-photo
    steps run over the photos (``map``; a thread pool's ``map`` runs them in parallel).
    """
    if not observations:
        raise ValueError("no observations")
    size = layout.size
    n_tex = layout.n_texels
    luma = LUMA_WEIGHTS.astype(np.float32)
    skin_w = cv2.GaussianBlur(layout.scatter(np.asarray(skin, np.float32)), (0, 0), max(size / 256, 0.5))
    face = layout.mask.astype(np.float32)
    sigma_hp = config.highpass_sigma * size

    small = min(size, config.solve_size)
    k = small / size
    floor = 1e-3 * _resize(face, small)

    def photo_data(ob: DetailObservation) -> tuple:
        """One photo's tangent duals, coarse shading S_k(n0) ``(N, 3)`` (for the albedo
        factors), trusted confidence ``(N,)`` and its data for the solve (None when it has
        too few trusted texels): observation b, data weight w, on the full grid."""
        dual = _duals(ob.tangents)
        n0 = ob.normals.astype(np.float32)
        coef = ob.sh.astype(np.float64) @ LUMA_WEIGHTS
        basis = sh_basis_rows(n0)  # one basis for the luminance and the RGB shading of n0
        s0 = np.maximum(shade_basis_rows(basis, coef), 1e-4)
        coarse = shade_basis_rows(basis, ob.sh)
        del basis
        lum = np.maximum(ob.colour.astype(np.float32) @ luma, 1e-4)
        conf = np.where(ob.confidence >= config.min_confidence, ob.confidence, 0.0).astype(np.float32)
        # Band-pass on a grid of at most solve_size (the wide blur is the costly part).
        y = _resize(layout.scatter(np.log(lum) - np.log(s0)), small)
        wmap = _resize(layout.scatter(conf) * skin_w, small)
        band = _blur(y, wmap + floor, config.fine_sigma * small) - _blur(y, wmap + floor, sigma_hp * k)
        b = layout.gather(_resize(band, size))
        w = layout.gather(_resize(wmap, size))
        sel = w > 0.1
        if sel.sum() < 50:
            return dual, coarse, conf, None
        spread = 1.4826 * np.median(np.abs(b[sel] - np.median(b[sel]))) + 1e-4
        width = max(config.robust_sigmas * spread, config.min_robust_width)
        w = w / (1.0 + (b / width) ** 2)
        return dual, coarse, conf, (ob, dual, coef, s0, b, w)

    duals, coarse_shading, confidences, data = zip(*map_photos(photo_data, observations))
    trust = np.zeros(n_tex, np.float32)
    for conf in confidences:
        trust = np.maximum(trust, conf)
    obs_maps = [d for d in data if d is not None]

    result_height = np.zeros((size, size), np.float32)
    if obs_maps:
        result_height = _solve_height(layout, obs_maps, face, sigma_hp, config, map_photos)

    # Output at full resolution from the (upsampled) height field.
    fade = np.clip(trust / 0.5, 0.0, 1.0)
    gradient = _uv_gradient(result_height, layout)  # one height field for the head and every photo
    normals = _tilted_rows(object_normals, gradient, _duals(object_tangents), fade).T

    def albedo_factor(ob: DetailObservation, dual: np.ndarray, b0: np.ndarray) -> np.ndarray:
        b1 = shading_rows(
            _tilted_rows(ob.normals, gradient, dual, fade).T, ob.sh
        )  # (N, 3) columns: rows, as shading_rows reads them
        return np.maximum(b0, 1e-4) / np.maximum(b1, 1e-4)

    factors = list(map_photos(albedo_factor, observations, duals, coarse_shading))
    return DetailResult(
        normals=np.ascontiguousarray(normals),
        height=layout.gather(result_height),
        albedo_factors=np.stack(factors).astype(np.float32, copy=False),
    )


def _solve_height(
    layout, obs_maps, face: np.ndarray, sigma_hp: float, config: DetailConfig, map_photos: Callable = map
) -> np.ndarray:
    """The height map ``(S, S)`` (head units), solved on a grid of at most ``solve_size``."""
    size = layout.size
    small = min(size, config.solve_size)
    step = size / small  # fine texels per solve texel

    def down(values: np.ndarray) -> np.ndarray:
        m = layout.scatter(values)
        return m if small == size else cv2.resize(m, (small, small), interpolation=cv2.INTER_AREA)

    face_s = face if small == size else cv2.resize(face, (small, small), interpolation=cv2.INTER_AREA)
    mask = face_s > 0.5
    du, dv, flat, laplacian = _grid_system(mask)
    n = flat.size
    # Unknown x = h / ell (ell: median tangent length per solve texel) keeps the system O(1).
    ell = _median_length(obs_maps[0][0].tangents) * step
    x = np.zeros(n)
    for _ in range(max(config.iterations, 1)):
        h_gradient = _uv_gradient(_upsample(x, flat, small, size) * ell, layout) if x.any() else None

        def photo_terms(
            ob: DetailObservation,
            dual: np.ndarray,
            coef: np.ndarray,
            s0: np.ndarray,
            b: np.ndarray,
            w: np.ndarray,
            h_gradient=h_gradient,
        ) -> tuple:
            """One photo's linear map (a_u, a_v) ``(n, 2)``, weight and residual ``(n,)`` on the solve grid."""
            if h_gradient is None:
                nk, sk = ob.normals, s0
            else:
                nk = ob.normals + _tilt_dual(h_gradient, dual)
                nk = normalize_rows(nk)
                sk = np.maximum(shading_rows(nk, coef), 1e-4)
            grad = shading_gradient(nk, coef)
            # d log S / d (grad h) per head unit: G^-1 [T_u T_v]^T grad S / S = D^T grad S / S.
            a_u = -(dual[0, 0] * grad[0] + dual[0, 1] * grad[1] + dual[0, 2] * grad[2]) / sk
            a_v = -(dual[1, 0] * grad[0] + dual[1, 1] * grad[1] + dual[1, 2] * grad[2]) / sk
            # Residual after the current height, re-linearised at n_k (Gauss-Newton).
            resid = b - (np.log(sk) - np.log(s0))
            a_s = np.stack([down(a_u).reshape(-1)[flat], down(a_v).reshape(-1)[flat]], axis=1) * ell
            return a_s, down(w).reshape(-1)[flat], down(resid).reshape(-1)[flat]

        terms = list(map_photos(photo_terms, *zip(*obs_maps)))
        data_scale = [float(np.sum(w_s * (a_s**2).sum(1)) / max(np.sum(w_s > 0.1), 1)) for a_s, w_s, _ in terms]
        # The photos' normal equations, summed per texel before any sparse product: with
        # m_k = diag(a_u) du + diag(a_v) dv, m_k^T W_k m_k = du^T diag(w a_u^2) du
        # + dv^T diag(w a_v^2) dv + du^T diag(w a_u a_v) dv + its transpose, and
        # m_k^T W_k (r_k + m_k x) = du^T (w a_u (r_k + m_k x)) + dv^T (w a_v (r_k + m_k x)).
        uu, vv, uv, q_u, q_v = (np.zeros(n) for _ in range(5))
        du_x, dv_x = du @ x, dv @ x
        for a_s, w_s, r_s in terms:
            a_u, a_v = a_s[:, 0], a_s[:, 1]
            w_r = w_s * (r_s + a_u * du_x + a_v * dv_x)  # solve for the new x, not the step
            uu += w_s * a_u * a_u
            vv += w_s * a_v * a_v
            uv += w_s * a_u * a_v
            q_u += a_u * w_r
            q_v += a_v * w_r
        cross = du.T @ sparse.diags(uv) @ dv
        lam = config.tilt_weight * max(np.mean(data_scale), 1e-6)
        mu = lam / (sigma_hp / step) ** 2
        lhs = (
            du.T @ sparse.diags(uu) @ du
            + dv.T @ sparse.diags(vv) @ dv
            + cross
            + cross.T
            + lam * laplacian
            + mu * sparse.identity(n)
        )
        rhs = du.T @ q_u + dv.T @ q_v
        # A direct sparse solve, the unknowns in nested-dissection order (ops.grid_solve): the
        # system is a 2-D screened-Poisson-like matrix, on which Jacobi-preconditioned CG needs
        # 150+ iterations and smoothed-aggregation AMG about 80 (the data term is anisotropic).
        x = solve_spd_ordered(lhs, rhs, dtype=np.float32).astype(np.float64)  # float32: the height feeds 8-bit normals
    return (_upsample(x, flat, small, size) * ell).astype(np.float32)


def _resize(grid: np.ndarray, side: int) -> np.ndarray:
    if grid.shape[0] == side:
        return grid
    interp = cv2.INTER_AREA if side < grid.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(grid, (side, side), interpolation=interp)


def _upsample(x: np.ndarray, flat: np.ndarray, small: int, size: int) -> np.ndarray:
    grid = np.zeros(small * small, np.float32)
    grid[flat] = x
    grid = grid.reshape(small, small)
    return grid if small == size else cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
