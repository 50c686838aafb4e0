"""Progress bars that cost nothing when they are off.

``tqdm(..., disable=True)`` still registers the bar with tqdm's class-wide state: a
process-shared lock and a monitor thread. A process forked while another thread holds
that lock, or killed while holding it, leaves every later bar of its family waiting
forever. :func:`progress_bar` builds a tqdm bar only when one is shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


class _Silent:
    """The part of tqdm's interface the library uses, doing nothing."""

    def __init__(self, iterable: Iterable | None) -> None:
        self._iterable = iterable

    def __iter__(self) -> Iterator:
        return iter(self._iterable if self._iterable is not None else ())

    def update(self, n: float = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, **kwargs: Any):
    """A ``tqdm.auto.tqdm`` bar over ``iterable`` when ``enabled``, else a silent stand-in.

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate; ``None`` for a bar advanced by ``update`` (pass ``total=``).
    enabled : bool
        Show the bar. When false no tqdm object (and no tqdm thread or lock) is made;
        the stand-in iterates ``iterable`` and ignores ``update`` and ``close``.
    **kwargs
        Passed to tqdm (``desc``, ``total``, ``unit``, ``leave``, ...).
    """
    if not enabled:
        return _Silent(iterable)
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
