"""``hifialbedo batch``: the reconstruction over large photo collections, resumable, on a local
process pool or a Ray cluster.

- :mod:`~hifialbedo.batch.discovery`: the items under INPUT_DIR (layouts photos / identities)
  and their output folders;
- :mod:`~hifialbedo.batch.manifest`: the manifest, the done markers, the options file, the lock;
- :mod:`~hifialbedo.batch.worker`: one item, in whichever process runs it;
- :mod:`~hifialbedo.batch.local` and :mod:`~hifialbedo.batch.ray_engine`: the engines;
- :mod:`~hifialbedo.batch.run`: the driver, :func:`run_batch`.
"""

from hifialbedo.batch.discovery import LAYOUTS, Item, Skipped, discover, unique_names
from hifialbedo.batch.manifest import COLUMNS, MANIFEST_NAME, MARKER_NAME, read_manifest, read_marker
from hifialbedo.batch.run import ENGINES, BatchStopped, BatchSummary, run_batch, summary_line

__all__ = [
    "COLUMNS",
    "ENGINES",
    "LAYOUTS",
    "MANIFEST_NAME",
    "MARKER_NAME",
    "BatchStopped",
    "BatchSummary",
    "Item",
    "Skipped",
    "discover",
    "read_manifest",
    "read_marker",
    "run_batch",
    "summary_line",
    "unique_names",
]
