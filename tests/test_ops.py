"""Colour and spherical-harmonics maths: properties and hand-computed values."""

import math

import numpy as np
import pytest
import torch
from scipy import sparse
from scipy.sparse.linalg import spsolve

from hifialbedo.ops.colour import (
    lab_to_linear,
    linear_to_lab,
    linear_to_srgb,
    linear_to_srgb_uint8,
    srgb_to_linear,
    srgb_uint8_to_linear,
)
from hifialbedo.ops.grid_solve import nested_dissection_order, solve_spd_ordered
from hifialbedo.ops.sh import directional_light, sh_basis, sh_shading, shading_basis, shading_rows, uniform_light


def _sphere_quadrature(n_theta=200, n_phi=400):
    """Midpoint rule on (theta, phi): directions (M, 3) and weights (M,) summing to 4 pi."""
    theta = (np.arange(n_theta) + 0.5) * math.pi / n_theta
    phi = (np.arange(n_phi) + 0.5) * 2 * math.pi / n_phi
    t, p = np.meshgrid(theta, phi, indexing="ij")
    dirs = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1).reshape(-1, 3)
    w = (np.sin(t) * (math.pi / n_theta) * (2 * math.pi / n_phi)).reshape(-1)
    return dirs, w


def test_sh_basis_is_orthonormal_on_the_sphere():
    dirs, w = _sphere_quadrature()
    b = sh_basis(dirs)
    gram = (b * w[:, None]).T @ b
    np.testing.assert_allclose(gram, np.eye(9), atol=2e-4)


def test_sh_basis_hand_values():
    # At the north pole only Y0, Y2 (z) and Y6 (3z^2 - 1) are non-zero.
    b = sh_basis(np.array([0.0, 0.0, 1.0]))
    expected = np.zeros(9)
    expected[0], expected[2], expected[6] = 0.282095, 0.488603, 0.315392 * 2
    np.testing.assert_allclose(b, expected, atol=1e-6)


def test_uniform_white_environment_gives_unit_shading_everywhere():
    rng = np.random.default_rng(0)
    n = rng.normal(size=(100, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    np.testing.assert_allclose(sh_shading(n, uniform_light(1.0)), 1.0, atol=1e-5)


@pytest.mark.parametrize("angle_deg", [0, 30, 60, 90, 120, 180])
def test_sh_shading_equals_the_exact_irradiance_integral(angle_deg):
    """Order-2 SH shading of a light equals the numerically integrated clamped cosine of
    the order-2 *projected* environment (Ramamoorthi & Hanrahan's band factors)."""
    light = np.array([0.0, 0.0, 1.0])
    coeffs = directional_light(light, radiance=1.0)
    a = math.radians(angle_deg)
    normal = np.array([math.sin(a), 0.0, math.cos(a)])
    dirs, w = _sphere_quadrature()
    radiance = sh_basis(dirs) @ coeffs[:, 0]
    exact = (radiance * np.maximum(dirs @ normal, 0.0) * w).sum() / math.pi
    assert sh_shading(normal, coeffs)[0] == pytest.approx(exact, abs=2e-3)


@pytest.mark.parametrize("angle_deg,expected", [(0, 1.0625), (60, 0.4609), (90, 0.09375)])
def test_directional_light_shading_at_known_angles(angle_deg, expected):
    """Closed form of the order-2 clamped cosine: 1/4 + cos/2 + 5/16 (3cos^2 - 1)... evaluated by hand."""
    c = math.cos(math.radians(angle_deg))
    hand = 0.25 + 0.5 * c + (5.0 / 16.0) * (3 * c * c - 1) / 2 * 1.0
    coeffs = directional_light([0, 0, 1], radiance=1.0)
    n = np.array([math.sin(math.radians(angle_deg)), 0.0, c])
    s = sh_shading(n, coeffs)[0]
    assert s == pytest.approx(hand, abs=1e-4)
    assert s == pytest.approx(expected, abs=1e-3)


def test_shading_torch_matches_numpy_and_has_gradients():
    rng = np.random.default_rng(1)
    n = rng.normal(size=(10, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    coeffs = rng.normal(size=(9, 3))
    nt = torch.tensor(n, requires_grad=True)
    ct = torch.tensor(coeffs, requires_grad=True)
    np.testing.assert_allclose(sh_shading(nt, ct).detach().numpy(), sh_shading(n, coeffs), rtol=1e-12)
    assert torch.autograd.gradcheck(sh_shading, (nt, ct))
    assert shading_basis(nt).shape == (10, 9)


def test_srgb_linear_round_trips():
    x = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-12)
    np.testing.assert_allclose(srgb_to_linear(linear_to_srgb(x)), x, atol=1e-12)
    codes = np.arange(256, dtype=np.uint8)
    assert np.array_equal(linear_to_srgb_uint8(srgb_uint8_to_linear(codes)), codes)


def test_srgb_known_values():
    # IEC 61966-2-1: the linear segment below 0.04045 and 0.5 -> 0.214041.
    assert float(srgb_to_linear(np.array(0.04))) == pytest.approx(0.04 / 12.92)
    assert float(srgb_to_linear(np.array(0.5))) == pytest.approx(0.2140411, abs=1e-6)
    assert float(linear_to_srgb(np.array(1.0))) == pytest.approx(1.0)


def test_lab_known_values_and_round_trip():
    # White is L* = 100, a* = b* = 0; sRGB (1, 0, 0) is L*a*b* (53.24, 80.09, 67.20) (Lindbloom).
    np.testing.assert_allclose(linear_to_lab(np.ones(3)), [100, 0, 0], atol=1e-3)
    np.testing.assert_allclose(linear_to_lab(np.array([1.0, 0, 0])), [53.24, 80.09, 67.20], atol=0.02)
    rng = np.random.default_rng(2)
    rgb = rng.uniform(0, 1, size=(50, 3))
    np.testing.assert_allclose(lab_to_linear(linear_to_lab(rgb)), rgb, atol=1e-9)


def test_row_operations_equal_numpy_reductions():
    """ops.vectors gives the numbers np.linalg.norm / max / cross / einsum give (same order of
    operations), in float32 and float64, so swapping them in changes no output."""
    from hifialbedo.ops.vectors import cross_rows, normalize_rows, row_dot, row_max, row_norm

    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        a = rng.normal(size=(5000, 3)).astype(dtype)
        b = rng.normal(size=(5000, 3)).astype(dtype)
        assert np.array_equal(row_max(a), a.max(axis=1))
        assert np.array_equal(row_norm(a), np.linalg.norm(a, axis=1))
        assert np.array_equal(cross_rows(a, b), np.cross(a, b))
        np.testing.assert_allclose(row_dot(a, b), np.einsum("ni,ni->n", a, b), rtol=1e-5, atol=1e-6)
        n = normalize_rows(a)
        assert n.dtype == dtype
        assert np.array_equal(n, a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-8))
    zero = normalize_rows(np.zeros((1, 3)))
    assert np.array_equal(zero, np.zeros((1, 3)))
    two = rng.normal(size=(100, 2))
    assert np.array_equal(row_norm(two), np.linalg.norm(two, axis=1))


def test_shading_rows_equal_the_basis_product_for_rgb_and_one_channel():
    rng = np.random.default_rng(3)
    normals = rng.normal(size=(1000, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    coefficients = rng.normal(size=(9, 3))
    expected = shading_basis(normals) @ coefficients
    got = shading_rows(normals.astype(np.float32), coefficients)
    assert got.shape == (1000, 3) and got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, expected, atol=2e-5)
    np.testing.assert_allclose(shading_rows(normals, coefficients[:, 1]), expected[:, 1], atol=2e-5)


def _grid_laplacian_system(mask: np.ndarray, rng) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """An SPD screened Poisson system with random positive edge weights on the texels of ``mask``."""
    flat = np.flatnonzero(mask)
    index = np.full(mask.size, -1)
    index[flat] = np.arange(flat.size)
    rows, cols = np.divmod(flat, mask.shape[1])
    pairs = []
    for dr, dc in ((0, 1), (1, 0)):
        r2, c2 = rows + dr, cols + dc
        ok = (r2 < mask.shape[0]) & (c2 < mask.shape[1])
        nb = np.full(flat.size, -1)
        nb[ok] = index[r2[ok] * mask.shape[1] + c2[ok]]
        pairs.append(np.stack([np.flatnonzero(nb >= 0), nb[nb >= 0]], axis=1))
    i, j = np.concatenate(pairs).T
    w = rng.uniform(0.1, 10.0, i.size)
    n = flat.size
    off = sparse.csr_matrix((-w, (i, j)), shape=(n, n))
    lap = off + off.T
    lap = lap - sparse.diags(np.asarray(lap.sum(axis=1)).ravel())
    return (lap + 1e-3 * sparse.identity(n)).tocsr(), rows, cols


def test_nested_dissection_solve_equals_superlu_on_a_grid_with_holes():
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:60, 0:80]
    mask = ((yy - 30) ** 2 / 28**2 + (xx - 40) ** 2 / 38**2 < 1) & ~((yy - 25) ** 2 + (xx - 30) ** 2 < 36)
    matrix, rows, cols = _grid_laplacian_system(mask, rng)
    order = nested_dissection_order(rows, cols)
    assert np.array_equal(np.sort(order), np.arange(rows.size))  # a permutation
    rhs = rng.normal(size=rows.size)
    # The system permuted into the elimination order, solved, and the solution put back.
    x = np.empty_like(rhs)
    x[order] = solve_spd_ordered(matrix[order][:, order], rhs[order])
    np.testing.assert_allclose(x, spsolve(matrix.tocsc(), rhs), rtol=1e-8, atol=1e-8 * np.abs(x).max())
    np.testing.assert_allclose(matrix @ x, rhs, atol=1e-8)
    single = solve_spd_ordered(matrix[order][:, order], rhs[order], dtype=np.float32)
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, x[order], rtol=0, atol=1e-4 * np.abs(x).max())
    # The separator of the first split comes last: its texels share one row or one column.
    last = order[-(mask.sum(axis=0).max()) :]
    assert len(set(rows[last])) == 1 or len(set(cols[last])) == 1
