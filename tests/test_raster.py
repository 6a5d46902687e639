"""The fast rasterizer against the slow reference, and the differentiable renderer's gradients."""

import numpy as np
import pytest
import torch

from hifialbedo.mesh.topology import load_face_topology
from hifialbedo.render.differentiable import PixelFaces, barycentrics, render, sample_texture
from hifialbedo.render.raster import rasterize, rasterize_reference


def _random_scene(seed, n_vertices=40, n_faces=25, size=24):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(-3, size + 3, (n_vertices, 2))
    faces = np.array([rng.choice(n_vertices, 3, replace=False) for _ in range(n_faces)])
    depth = rng.uniform(0, 1, n_vertices)
    return pos, faces, depth


@pytest.mark.parametrize("seed", range(5))
def test_fast_rasterizer_matches_reference_with_depth(seed):
    pos, faces, depth = _random_scene(seed)
    fast = rasterize(pos, faces, 24, 20, depth)
    slow = rasterize_reference(pos, faces, 24, 20, depth)
    assert fast.mask.sum() > 50
    np.testing.assert_array_equal(fast.face_index, slow.face_index)
    np.testing.assert_allclose(fast.bary, slow.bary, atol=1e-5)
    np.testing.assert_allclose(fast.depth[fast.mask], slow.depth[slow.mask], atol=1e-5)


def test_fast_rasterizer_matches_reference_on_the_face_uv_layout():
    topo = load_face_topology()
    size = 48
    fast = rasterize(topo.uv * size, topo.faces, size, size)
    slow = rasterize_reference(topo.uv * size, topo.faces, size, size)
    np.testing.assert_array_equal(fast.mask, slow.mask)
    # Where triangles share an edge exactly the winner may differ; the interpolated UV may not.
    uv_fast = fast.interpolate(topo.uv, topo.faces)
    uv_slow = slow.interpolate(topo.uv, topo.faces)
    np.testing.assert_allclose(uv_fast, uv_slow, atol=1e-6)


def test_uv_layout_interpolates_texel_centres():
    """Interpolating the vertices' own UVs at each covered texel gives that texel's centre."""
    topo = load_face_topology()
    size = 256
    frags = rasterize(topo.uv * size, topo.faces, size, size)
    uv = frags.interpolate(topo.uv, topo.faces)
    rows, cols = np.nonzero(frags.mask)
    np.testing.assert_allclose(uv[rows, cols, 0], (cols + 0.5) / size, atol=1e-5)
    np.testing.assert_allclose(uv[rows, cols, 1], (rows + 0.5) / size, atol=1e-5)


def test_backface_culling_and_nearest_wins():
    tri = np.array([[0, 1, 2]])
    ccw_camera = np.array([[2.0, 2.0], [2.0, 18.0], [18.0, 2.0]])  # counter-clockwise seen from a y-up camera
    assert rasterize(ccw_camera, tri, 20, 20, np.zeros(3), cull_backfaces=True).mask.sum() > 0
    assert rasterize(ccw_camera[[0, 2, 1]], tri, 20, 20, np.zeros(3), cull_backfaces=True).mask.sum() == 0
    two = np.concatenate([ccw_camera, ccw_camera])
    frags = rasterize(two, np.array([[0, 1, 2], [3, 4, 5]]), 20, 20, np.array([5.0, 5, 5, 1, 1, 1]))
    assert set(np.unique(frags.face_index[frags.mask])) == {1}


def test_barycentrics_gradcheck_and_match_numpy():
    pos, faces, depth = _random_scene(3, size=12)
    frags = rasterize(pos, faces, 12, 12, depth)
    pf = PixelFaces(torch.from_numpy(frags.face_index.astype(np.int64))[None])
    p = torch.tensor(pos[None], dtype=torch.float64, requires_grad=True)
    f = torch.from_numpy(faces)
    b = barycentrics(p, f, pf)
    np.testing.assert_allclose(b[0].detach().numpy(), frags.bary, atol=1e-5)
    assert torch.autograd.gradcheck(lambda q: barycentrics(q, f, pf), (p,))


def test_texture_sampling_gradcheck_and_texel_centres():
    tex = torch.rand(1, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    uv = torch.rand(1, 5, 5, 2, dtype=torch.float64) * 0.8 + 0.1
    assert torch.autograd.gradcheck(lambda t: sample_texture(t, uv), (tex,))
    centre = torch.tensor([[[[(3 + 0.5) / 8, (5 + 0.5) / 8]]]], dtype=torch.float64)
    np.testing.assert_allclose(sample_texture(tex, centre)[0, :, 0, 0].detach(), tex[0, :, 5, 3].detach())


def test_render_gradients_reach_texture_and_light():
    topo = load_face_topology()
    pos = torch.tensor(topo.uv[None] * 40, dtype=torch.float64, requires_grad=True)
    normals = torch.zeros(1, 468, 3, dtype=torch.float64)
    normals[..., 2] = 1.0
    tex = torch.full((1, 3, 16, 16), 0.5, dtype=torch.float64, requires_grad=True)
    sh = torch.zeros(1, 9, 3, dtype=torch.float64)
    sh[:, 0] = 1.0 / 0.282095  # uniform white: shading 1
    sh.requires_grad_(True)
    out = render(pos, torch.zeros(1, 468), normals, torch.from_numpy(topo.uv), torch.from_numpy(topo.faces), tex, sh, 40, 40)
    inside = out.mask[0, 0] > 0
    np.testing.assert_allclose(out.image[0, :, inside].detach(), 0.5, atol=1e-6)
    out.image.sum().backward()
    assert tex.grad.abs().sum() > 0 and sh.grad[:, 0].abs().sum() > 0
