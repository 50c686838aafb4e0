"""Optional dependencies, imported when a function needs them.

The core of meshcnn needs only torch, NumPy, SciPy and the mesh libraries; xarray, netCDF4, Dask,
matplotlib, safetensors, ... are optional extras (``setup.cfg``). A function that needs one imports it
with :func:`optional_import`, so that a missing one is an ``ImportError`` that says what needed it and
which extra installs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["optional_import"]


def optional_import(module: str, purpose: str, extra: str) -> ModuleType:
    """Import the optional dependency ``module``, or raise an ``ImportError`` naming what needs it and its extra.

    Parameters
    ----------
    module : str
        The module to import, e.g. ``"xarray"`` or ``"dask.array"``.
    purpose : str
        What needs it, as the start of the message: e.g. ``"lazy (Dask) regridding needs dask"``.
    extra : str
        The optional extra of meshcnn that installs it (``setup.cfg``), e.g. ``"dask"``.

    Returns
    -------
    module
        The imported module (``import_module("dask.array")`` is ``dask.array``).

    Raises
    ------
    ImportError
        ``"<purpose>; install the optional extra: pip install 'meshcnn[<extra>]'"``, chained to the
        original error.

    Examples
    --------
    >>> json = optional_import("json", "this example needs json", "all")
    >>> json.dumps([1])
    '[1]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{purpose}; install the optional extra: pip install 'meshcnn[{extra}]'") from exc
