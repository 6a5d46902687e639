"""hifialbedo: de-lit facial albedo, lighting and a textured mesh from ordinary photos.

Layers, low to high. A module imports from its own package and from lower layers only;
packages sharing a layer (``|``) do not import each other::

    typed_config -> ops -> mesh -> render -> inverse | models -> io -> synth -> training | eval -> pipeline -> web | batch -> cli

- ``typed_config``: config dataclasses from and to plain values, for every layer's settings
- ``ops``: pure maths on arrays and tensors (colour, ITA and skin types, SH, BRDFs)
- ``mesh``: the face topology, UV regions, landmark detection, mesh fitting
- ``render``: rasterizers, the UV layout, unwrap (photo -> UV), view shading (UV -> photo),
  relit renders, the differentiable renderer
- ``inverse``: the training-free estimation (lighting + albedo, priors, specular, detail
  normals, fusion, completion)
- ``models``: the learned networks (identity, VQGAN, discriminators, attention, the HiFiAlbedo
  model), their losses, LPIPS, and their saved files (checkpoints included)
- ``io``: reading and validating inputs, atomic writing, OBJ / glTF / lights, the output
  contract of ``reconstruct`` (``io.contract``) and its reader
- ``synth``: the synthetic face engine (it writes datasets through ``io``)
- ``training``: the engine and the three stages' orchestration and data
- ``eval``: metrics and benchmark runners; they take the methods they score as callables
- ``pipeline``: what wires the stages into the commands (``reconstruct``, ``identity``,
  ``relight``) and the pipeline as scored methods
- ``web``: the ``serve`` page (app, job queue, lights, static files), running jobs through the pipeline
- ``batch``: the ``batch`` command's engines (a local process pool, Ray Data), manifest and resume
- ``cli``: argument parsing, one module per command

:data:`LAYERS` is the same order as data; ``tests/test_layering.py`` checks every import
in the package against it, imports inside functions included.
"""

__version__ = "0.1.0"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("typed_config",),
    ("ops",),
    ("mesh",),
    ("render",),
    ("inverse", "models"),
    ("io",),
    ("synth",),
    ("training", "eval"),
    ("pipeline",),
    ("web", "batch"),
    ("cli",),
)
"""The layers of the package, low to high: tuples of the top-level packages (or modules)
that share a layer. The one source of the order the module docstring shows."""
