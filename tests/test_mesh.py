"""Face topology, symmetry map, regions and fitted geometry."""

import itertools
from collections import Counter

import numpy as np

from hifialbedo.mesh.geometry import fit_face_geometry, vertex_normals
from hifialbedo.mesh.topology import load_face_topology, uv_mirror_texels, uv_regions


def test_topology_is_a_disk_with_three_holes():
    topo = load_face_topology()
    assert topo.uv.shape == (468, 2) and topo.faces.shape == (852, 3)
    edges = Counter(tuple(sorted(e)) for f in topo.faces for e in itertools.combinations(f, 2))
    assert set(edges.values()) == {1, 2}
    assert 468 - len(edges) + len(topo.faces) == -2  # Euler characteristic of a disk with 3 holes


def test_triangles_are_counter_clockwise_in_uv():
    topo = load_face_topology()
    p = topo.uv * [1, -1]
    a, b, c = p[topo.faces[:, 0]], p[topo.faces[:, 1]], p[topo.faces[:, 2]]
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    assert (cross > 0).all()


def test_vertex_mirror_map_is_an_involution_matching_uv_symmetry():
    topo = load_face_topology()
    assert np.array_equal(topo.mirror[topo.mirror], np.arange(468))
    np.testing.assert_allclose(topo.uv[topo.mirror, 0], 1 - topo.uv[:, 0], atol=1.5e-3)
    np.testing.assert_allclose(topo.uv[topo.mirror, 1], topo.uv[:, 1], atol=1.5e-3)


def test_texel_mirror_map():
    size = 64
    rows, cols = uv_mirror_texels(size)
    assert (rows[3, 5], cols[3, 5]) == (3, 58)
    face = uv_regions(size)["face"]
    # The face region is (nearly) symmetric under the texel mirror.
    assert (face == face[rows, cols]).mean() > 0.99


def test_regions_are_inside_the_face_and_sensible():
    r = uv_regions(256)
    face = r["face"]
    for name, mask in r.items():
        assert mask.any(), name
        assert not (mask & ~face).any(), name
    assert not (r["skin"] & (r["eyes"] | r["lips"] | r["brows"])).any()
    assert not (r["forehead"] & r["cheeks"]).any()
    rows = np.nonzero(r["forehead"])[0].mean(), np.nonzero(r["cheeks"])[0].mean(), np.nonzero(r["lips"])[0].mean()
    assert rows[0] < rows[1] < rows[2]  # forehead above cheeks above lips (v down)


def test_vertex_normals_of_a_flat_grid_face_the_camera():
    verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=float)
    faces = np.array([[0, 1, 2], [1, 3, 2]])
    np.testing.assert_allclose(vertex_normals(verts, faces), [[0, 0, 1]] * 4)


def test_fitted_geometry_projects_onto_landmarks_and_faces_camera(grace):
    image, lm = grace
    g = fit_face_geometry(lm, image.shape[:2])
    np.testing.assert_allclose(g.pixel_xy, lm[:468, :2])
    assert (g.camera_normals[:, 2] > 0).mean() > 0.9
    # The head frame is a rotation; a near-frontal photo gives one near the identity.
    np.testing.assert_allclose(g.frame.rotation @ g.frame.rotation.T, np.eye(3), atol=1e-9)
    assert np.trace(g.frame.rotation) > 2.8


def test_the_detector_loads_without_matplotlib_and_leaves_it_importable():
    """import_mediapipe keeps mediapipe's drawing helpers from importing matplotlib (a third
    of the command's start-up), and a later import of matplotlib gets the real one."""
    import subprocess
    import sys

    code = (
        "import sys, cv2\n"
        "from hifialbedo.mesh.landmarks import LandmarkDetector\n"
        "detector = LandmarkDetector()\n"
        "assert 'matplotlib' not in sys.modules and 'matplotlib.pyplot' not in sys.modules\n"
        "image = cv2.imread(sys.argv[1])[..., ::-1]\n"
        "assert detector.detect(image).landmarks.shape == (478, 3)\n"
        "import matplotlib.pyplot as plt\n"
        "assert callable(plt.figure)\n"
        "print('ok')\n"
    )
    from pathlib import Path

    sample = Path(__file__).resolve().parents[1] / "samples" / "astronaut.png"
    out = subprocess.run([sys.executable, "-c", code, str(sample)], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
