"""The one progress display of the command line: a tqdm bar on stderr when it is a terminal
and ``--quiet`` is not given; nothing otherwise (pipes, logs, tests)."""

from __future__ import annotations

import sys


class Progress:
    """A progress display, used as a context manager (closed on exit).

    ``unit`` given: a counting bar; :meth:`count` sets how far it is (and the total, when it
    is known only on the way). ``unit`` None: a line naming the current stage and the time
    spent; :meth:`stage` moves it on. Without a terminal, or with ``quiet``, both do nothing.
    """

    def __init__(self, quiet: bool, *, unit: str | None = None, total: int = 0) -> None:
        self.bar = None
        if quiet or not sys.stderr.isatty():
            return
        from tqdm import tqdm

        if unit is None:
            self.bar = tqdm(total=None, bar_format="{desc} [{elapsed}]", file=sys.stderr, leave=False)
        else:
            self.bar = tqdm(total=total, file=sys.stderr, leave=False, unit=unit)

    @property
    def shown(self) -> bool:
        return self.bar is not None

    def stage(self, name: str) -> None:
        """Show ``hifialbedo: <name>`` (a pipeline ``progress`` callback)."""
        if self.bar is not None:
            self.bar.set_description_str(f"hifialbedo: {name}")
            self.bar.update(1)

    def count(self, done: int, total: int | None = None, what: str | None = None) -> None:
        """``done`` items of ``total`` (None: as set before), ``what``: the current item."""
        if self.bar is not None:
            if total is not None:
                self.bar.total = total
            if what is not None:
                self.bar.set_description_str(what[:40])
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
