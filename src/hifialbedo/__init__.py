"""hifialbedo: de-lit facial albedo, lighting and a textured mesh from ordinary photos.

Layers, low to high (a lower layer never imports a higher one):
``ops`` -> ``mesh`` -> ``render`` -> ``inverse`` -> ``io`` -> ``pipeline`` -> ``cli``.
"""

__version__ = "0.1.0"
