"""Build docs/outputs.jpg (the README's picture) from an output folder of `reconstruct`.

Usage: python tools/make_readme_figure.py OUT_DIR PHOTO
"""

import sys
from pathlib import Path

import cv2
import numpy as np


def tile(img: np.ndarray, size: int = 300) -> np.ndarray:
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:  # composite on grey
        a = img[..., 3:4].astype(np.float32) / 255
        img = (img[..., :3] * a + 40 * (1 - a)).astype(np.uint8)
    h, w = img.shape[:2]
    f = size / max(h, w)
    img = cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    out = np.full((size, size, 3), 40, np.uint8)
    y, x = (size - img.shape[0]) // 2, (size - img.shape[1]) // 2
    out[y : y + img.shape[0], x : x + img.shape[1]] = img
    return out


out, photo = Path(sys.argv[1]), Path(sys.argv[2])
view = out / "views" / photo.stem
names = [photo, out / "albedo.png", out / "texture.png", out / "normal.png", view / "shading_view.png", view / "render_view.png"]
tiles = [tile(cv2.imread(str(p), cv2.IMREAD_UNCHANGED)) for p in names]
labels = ["photo", "albedo.png", "texture.png", "normal.png", "shading_view.png", "render_view.png"]
for t, label in zip(tiles, labels):
    cv2.putText(t, label, (8, 290), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
Path("docs").mkdir(exist_ok=True)
cv2.imwrite("docs/outputs.jpg", np.vstack([np.hstack(tiles[:3]), np.hstack(tiles[3:])]), [cv2.IMWRITE_JPEG_QUALITY, 85])
print("wrote docs/outputs.jpg")
