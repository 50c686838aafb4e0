"""Helpers shared by the test modules (importable as ``_helpers``: pytest puts ``tests/`` on the path)."""

from __future__ import annotations

import importlib.util
import pkgutil
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"


def meshcnn_module_names(*, packages_only: bool = False) -> list[str]:
    """``"meshcnn"`` and the dotted names of its modules (sorted; ``__main__`` modules, which run a command
    line, left out), or of its packages only."""
    import meshcnn

    found = pkgutil.walk_packages(meshcnn.__path__, "meshcnn.")
    names = [m.name for m in found if (m.ispkg or not packages_only) and not m.name.endswith(".__main__")]
    return ["meshcnn", *sorted(names)]


def load_script(path: str | Path, name: str | None = None) -> ModuleType:
    """An experiment script imported by path (scripts are not a package), to call its functions in-process.

    Parameters
    ----------
    path : str or Path
        The script, absolute or relative to ``experiments/`` (e.g. ``"benchmark/operators.py"``).
    name : str, optional
        Module name; default ``"script_"`` and the path's parts.
    """
    path = Path(path)
    if not path.is_absolute():
        path = EXPERIMENTS / path
    name = name or "script_" + "_".join(path.with_suffix("").parts[-2:])
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LAYER_KINDS = ("conv", "stride2", "transpose")


def make_layer(
    kind: str = "conv",
    level: int = 2,
    in_channels: int = 3,
    out_channels: int = 5,
    *,
    seed: int = 0,
    dtype=None,
    normal: bool = True,
    **kwargs,
):
    """A MeshConv-family layer for the tests, built the one way the test modules share.

    Parameters
    ----------
    kind : {"conv", "stride2", "transpose"}
        ``MeshConv``, ``MeshConv(stride=2)`` or ``MeshConvTranspose``.
    level : int
        The layer's (fine) icosphere level.
    in_channels, out_channels : int
    seed : int
        ``torch.manual_seed`` before the layer is built (and its parameters drawn).
    dtype : torch.dtype, optional
        Default float64.
    normal : bool
        Redraw the weight and bias from N(0, 1) (else the layer's own uniform initialisation).
    **kwargs
        Passed to the layer (``bias``, ``orientation``, ...).
    """
    import torch

    from meshcnn import MeshConv, MeshConvTranspose

    torch.manual_seed(seed)
    if kind == "conv":
        layer = MeshConv(in_channels, out_channels, level, **kwargs)
    elif kind == "stride2":
        layer = MeshConv(in_channels, out_channels, level, stride=2, **kwargs)
    elif kind == "transpose":
        layer = MeshConvTranspose(in_channels, out_channels, level, **kwargs)
    else:
        raise ValueError(f"kind must be one of {LAYER_KINDS}, got {kind!r}")
    layer = layer.to(torch.float64 if dtype is None else dtype)
    if normal:
        with torch.no_grad():
            layer.weight.normal_()
            if layer.bias is not None:
                layer.bias.normal_()
    return layer


def with_taps(layer):
    """``(layer, its dense taps for mesh_conv_reference, V_in)``."""
    from meshcnn.testing import layer_taps

    return layer, layer_taps(layer), layer.in_mesh.num_vertices
