"""Second-order real spherical harmonics and Lambertian shading.

Basis (orthonormal on the unit sphere, integral of Y_i Y_j over the sphere = delta_ij),
for a unit direction n = (x, y, z):

    Y0 = 0.282095                      (l=0)
    Y1 = 0.488603 y,  Y2 = 0.488603 z,  Y3 = 0.488603 x          (l=1; m = -1, 0, 1)
    Y4 = 1.092548 xy, Y5 = 1.092548 yz, Y6 = 0.315392 (3z^2 - 1),
    Y7 = 1.092548 xz, Y8 = 0.546274 (x^2 - y^2)                  (l=2; m = -2..2)

Lighting is the environment's radiance L(w) = sum_i L_i Y_i(w), coefficients ``(9, 3)`` per
linear-RGB channel. A Lambertian surface with normal n receives irradiance
E(n) = sum_i A_l(i) L_i Y_i(n) with A_0 = pi, A_1 = 2 pi / 3, A_2 = pi / 4
(Ramamoorthi & Hanrahan 2001), and its *shading* is S(n) = E(n) / pi, so that a pixel
of albedo a reads I = a * S. With this normalisation a uniform white environment of
radiance 1 gives S = 1 for every normal.

Normals live in the camera frame: x right, y up, z toward the camera.
Functions accept NumPy arrays or torch tensors (gradients flow through the torch path).
"""

from __future__ import annotations

import math

import numpy as np

from hifialbedo.ops._array import stack

SH_CONSTANTS = (0.282095, 0.488603, 1.092548, 0.315392, 0.546274)
BAND_OF_COEFFICIENT = (0, 1, 1, 1, 2, 2, 2, 2, 2)
# A_l / pi: the cosine lobe's band factors divided by pi (irradiance -> shading).
SHADING_BAND_FACTORS = (1.0, 2.0 / 3.0, 0.25)
SHADING_FACTORS = np.array([SHADING_BAND_FACTORS[b] for b in BAND_OF_COEFFICIENT])


def sh_basis(normals):
    """Real SH basis ``(..., 9)`` at unit directions ``(..., 3)`` (see the module docstring)."""
    x, y, z = normals[..., 0], normals[..., 1], normals[..., 2]
    c0, c1, c2, c3, c4 = SH_CONSTANTS
    return stack(
        [
            c0 + 0.0 * x,
            c1 * y,
            c1 * z,
            c1 * x,
            c2 * x * y,
            c2 * y * z,
            c3 * (3.0 * z * z - 1.0),
            c2 * x * z,
            c4 * (x * x - y * y),
        ],
        axis=-1,
    )


def shading_basis(normals):
    """Basis ``(..., 9)`` such that shading S(n) = shading_basis(n) @ coefficients."""
    basis = sh_basis(normals)
    factors = SHADING_FACTORS
    if not isinstance(basis, np.ndarray):
        import torch

        factors = torch.as_tensor(factors, dtype=basis.dtype, device=basis.device)
    else:
        factors = factors.astype(basis.dtype)
    return basis * factors


def shading_rows(normals: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """``shading_basis(normals) @ coefficients`` for NumPy normals ``(N, 3)`` in float32: S
    ``(N, C)`` for coefficients ``(9, C)``, or ``(N,)`` for ``(9,)`` (one channel, e.g. luminance).

    The same polynomial as :func:`sh_shading`, evaluated with the basis laid out as ``(9, N)``
    rows (:func:`sh_basis_rows`, then :func:`shade_basis_rows`; build the basis once where
    several lights shade the same normals): NumPy builds an ``(N, 9)`` stack slowly (about
    30 ms for a million-texel layout; this takes a fifth of that). Equal to float32 rounding
    (a few 1e-7).

    >>> n = np.array([[0.0, 0.0, 1.0], [0.6, 0.0, 0.8]])
    >>> bool(np.allclose(shading_rows(n, uniform_light(0.5)), 0.5))
    True
    """
    return shade_basis_rows(sh_basis_rows(normals), coefficients)


def sh_basis_rows(normals: np.ndarray) -> np.ndarray:
    """The real SH basis (:func:`sh_basis`) of NumPy normals ``(N, 3)`` as float32 rows ``(9, N)``."""
    x, y, z = (np.ascontiguousarray(normals[:, i], dtype=np.float32) for i in range(3))
    c0, c1, c2, c3, c4 = SH_CONSTANTS
    basis = np.empty((9, x.size), np.float32)
    basis[0] = c0
    np.multiply(y, c1, out=basis[1])
    np.multiply(z, c1, out=basis[2])
    np.multiply(x, c1, out=basis[3])
    np.multiply(x, y, out=basis[4])
    basis[4] *= c2
    np.multiply(y, z, out=basis[5])
    basis[5] *= c2
    np.multiply(z, z, out=basis[6])
    basis[6] *= 3.0 * c3
    basis[6] -= c3
    np.multiply(x, z, out=basis[7])
    basis[7] *= c2
    np.multiply(x, x, out=basis[8])
    basis[8] -= y * y
    basis[8] *= c4
    return basis


def shade_basis_rows(basis: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """Shading ``(N, C)`` (or ``(N,)``) of basis rows ``(9, N)`` (:func:`sh_basis_rows`) under
    radiance coefficients ``(9, C)`` (or ``(9,)``), in float32 (:func:`shading_rows`)."""
    coefficients = np.asarray(coefficients)
    weighted = (SHADING_FACTORS.reshape((9,) + (1,) * (coefficients.ndim - 1)) * coefficients).astype(np.float32)
    return np.ascontiguousarray((weighted.T @ basis).T)


def sh_shading(normals, coefficients):
    """Lambertian shading ``(..., 3)`` of unit normals ``(..., 3)`` under SH light ``(9, 3)``.

    The coefficients are radiance coefficients in linear RGB; see the module docstring.
    A leading batch axis on both is allowed: normals ``(B, ..., 3)``, coefficients ``(B, 9, 3)``.

    >>> white = uniform_light(1.0)
    >>> sh_shading(np.array([0.0, 0.0, 1.0]), white).round(6).tolist()
    [1.0, 1.0, 1.0]
    """
    basis = shading_basis(normals)
    if coefficients.ndim == 3:  # batched: contract the 9 axis per batch element
        b = basis.reshape(basis.shape[0], -1, 9)
        out = b @ coefficients
        return out.reshape(*basis.shape[:-1], coefficients.shape[-1])
    return basis @ coefficients


def uniform_light(radiance: float | np.ndarray = 1.0) -> np.ndarray:
    """SH coefficients ``(9, 3)`` of a uniform environment of the given linear-RGB radiance."""
    coeffs = np.zeros((9, 3))
    coeffs[0] = np.broadcast_to(np.asarray(radiance, dtype=np.float64), (3,)) / SH_CONSTANTS[0]
    return coeffs


def directional_light(direction, radiance=1.0, ambient=0.0) -> np.ndarray:
    """SH coefficients ``(9, 3)`` of a distant light plus a uniform ambient term.

    ``direction`` points from the surface toward the light (camera frame). The light is
    a delta of total irradiance ``radiance`` on a surface facing it; its SH projection is
    truncated to second order (the usual 9-coefficient approximation of a clamped cosine:
    the shading at angle t from the light is about radiance * max(cos t, 0)).
    """
    d = np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    colour = np.broadcast_to(np.asarray(radiance, dtype=np.float64), (3,))
    # A delta light giving irradiance E at normal incidence has radiance coefficients
    # L_i = E * Y_i(d) and irradiance E * max(n.d, 0); the shading is irradiance / pi, so
    # the factor pi makes the shading E * max(n.d, 0) (up to the order-2 truncation).
    coeffs = math.pi * np.outer(sh_basis(d), colour)
    return coeffs + uniform_light(ambient)


def dominant_direction(coefficients: np.ndarray) -> np.ndarray:
    """Unit direction of the first-order (linear) part of the luminance light, camera frame."""
    from hifialbedo.ops.colour import LUMA_WEIGHTS

    lum = coefficients @ LUMA_WEIGHTS
    v = np.array([lum[3], lum[1], lum[2]])
    n = np.linalg.norm(v)
    return v / n if n > 0 else np.array([0.0, 0.0, 1.0])


def equirect_directions(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit directions ``(H, W, 3)`` and solid angles ``(H, W)`` of an equirectangular map's pixels.

    Camera frame (x right, y up, z toward the camera). Row i has polar angle
    theta = (i + 0.5) pi / H from +y (row 0 looks up); column j has azimuth
    phi = (j + 0.5) 2 pi / W - pi about +y, measured from +z toward +x, so the map's centre
    looks at the camera (the light falling on a frontal face) and its left and right edges
    behind the subject. The solid angles sum to 4 pi.
    """
    theta = (np.arange(height) + 0.5) * math.pi / height
    phi = (np.arange(width) + 0.5) * 2.0 * math.pi / width - math.pi
    t, p = np.meshgrid(theta, phi, indexing="ij")
    dirs = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], axis=-1)
    # Exact solid angle of each pixel: dphi * (cos theta_top - cos theta_bottom).
    edges = np.cos(np.arange(height + 1) * math.pi / height)
    rows = (edges[:-1] - edges[1:]) * 2.0 * math.pi / width
    return dirs, np.broadcast_to(rows[:, None], (height, width)).copy()


def _equirect_basis_integrals(height: int, width: int) -> np.ndarray:
    """The integral of each SH basis function over each pixel's patch of the sphere, ``(H, W, 9)``.

    Exact (closed forms in u = cos theta and phi), so a piecewise-constant environment is
    projected without quadrature error.
    """
    u = np.cos(np.arange(height + 1) * math.pi / height)  # decreasing: row i spans [u[i+1], u[i]]
    phi = np.arange(width + 1) * 2.0 * math.pi / width - math.pi
    s = np.sqrt(np.clip(1.0 - u * u, 0.0, None))

    def du(f):  # integral over each row of a function of u (given its antiderivative f)
        return (f(u)[:-1] - f(u)[1:])[:, None]

    def dphi(g):
        return (g(phi)[1:] - g(phi)[:-1])[None, :]

    one_u = du(lambda x: x)
    u1 = du(lambda x: x * x / 2)
    u2 = du(lambda x: x**3 / 3)
    s1 = (np.arcsin(np.clip(u, -1, 1)) + u * s) / 2
    s1 = (s1[:-1] - s1[1:])[:, None]  # integral of sqrt(1 - u^2)
    us = -(s**3) / 3
    us = (us[:-1] - us[1:])[:, None]  # integral of u sqrt(1 - u^2)
    one_minus_u2 = one_u - u2
    one_p = dphi(lambda x: x)
    sin_p = dphi(lambda x: -np.cos(x))
    cos_p = dphi(np.sin)
    cos2_p = dphi(lambda x: x / 2 + np.sin(2 * x) / 4)
    sin2_p = dphi(lambda x: x / 2 - np.sin(2 * x) / 4)
    sincos_p = dphi(lambda x: np.sin(x) ** 2 / 2)
    c0, c1, c2, c3, c4 = SH_CONSTANTS
    # Direction (x, y, z) = (sqrt(1-u^2) sin phi, u, sqrt(1-u^2) cos phi); dOmega = du dphi.
    return np.stack(
        [
            c0 * one_u * one_p,
            c1 * u1 * one_p,
            c1 * s1 * cos_p,
            c1 * s1 * sin_p,
            c2 * us * sin_p,
            c2 * us * cos_p,
            c3 * (3.0 * one_minus_u2 * cos2_p - one_u * one_p),
            c2 * one_minus_u2 * sincos_p,
            c4 * (one_minus_u2 * sin2_p - u2 * one_p),
        ],
        axis=-1,
    )


def sh_from_equirect(env: np.ndarray) -> np.ndarray:
    """Project an equirectangular environment ``(H, W, 3)`` of linear-RGB radiance onto the
    9 SH coefficients ``(9, 3)`` (radiance coefficients, as ``uniform_light`` and
    ``directional_light`` give; layout in ``equirect_directions``).

    L_i = integral of L(w) Y_i(w) dOmega, with the environment constant over each pixel
    (integrated exactly). A uniform environment of radiance 1 gives
    ``uniform_light(1.0)``; a narrow bright blob of total radiant intensity pi * E in
    direction d approaches ``directional_light(d, E)``.

    >>> np.allclose(sh_from_equirect(np.ones((16, 32, 3))), uniform_light(1.0), atol=1e-5)
    True
    """
    env = np.asarray(env, dtype=np.float64)
    if env.ndim != 3 or env.shape[2] != 3:
        raise ValueError(f"environment must be (H, W, 3), got {env.shape}")
    basis = _equirect_basis_integrals(env.shape[0], env.shape[1])  # (H, W, 9)
    return basis.reshape(-1, 9).T @ env.reshape(-1, 3)


def sh_radiance(directions, coefficients):
    """The environment's radiance ``(..., 3)`` seen along unit ``directions (..., 3)``:
    L(w) = sum_i L_i Y_i(w), the SH light ``(9, 3)`` evaluated on the sphere (linear RGB;
    the order-2 truncation can ring below 0)."""
    return sh_basis(directions) @ coefficients


def equirect_from_sh(coefficients: np.ndarray, height: int, width: int) -> np.ndarray:
    """The SH light ``(9, 3)`` as an equirectangular map ``(H, W, 3)`` of linear-RGB radiance
    (layout and frame in ``equirect_directions``; the inverse of ``sh_from_equirect`` on
    order-2 content)."""
    if height < 1 or width < 1:
        raise ValueError(f"map size must be positive, got {height}x{width}")
    dirs, _ = equirect_directions(height, width)
    return sh_radiance(dirs, np.asarray(coefficients, dtype=np.float64))


def directional_part(coefficients: np.ndarray, direction=None) -> tuple[np.ndarray, np.ndarray]:
    """The distant light ``(direction (3,), colour (3,))`` that best stands for the SH light's
    directional part (for a specular highlight).

    ``direction`` defaults to ``dominant_direction``. The colour E, per linear-RGB channel,
    is the first-order band's component along it divided by pi * Y1's constant, so that
    ``directional_light(d, E)`` gives back E exactly (clipped at 0).

    >>> d, e = directional_part(directional_light([0, 1, 0], [0.5, 0.4, 0.3], ambient=0.2))
    >>> d.round(6).tolist(), e.round(6).tolist()
    ([0.0, 1.0, 0.0], [0.5, 0.4, 0.3])
    """
    coefficients = np.asarray(coefficients, dtype=np.float64)
    d = dominant_direction(coefficients) if direction is None else np.asarray(direction, dtype=np.float64)
    d = d / np.linalg.norm(d)
    band1 = coefficients[[3, 1, 2]]  # (3 xyz, 3 rgb): the x, y, z first-order coefficients
    colour = np.maximum(d @ band1 / (math.pi * SH_CONSTANTS[1]), 0.0)
    return d, colour
