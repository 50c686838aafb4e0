r"""Regridder objects: the weights between two grids, applied to NumPy, torch, Dask and xarray data.

A :class:`Regridder` is built once per pair of grids and method (as xESMF's ``Regridder`` and
earth2grid's ``get_regridder``) and then called on data::

    rg = Regridder(LatLonGrid(lat, lon), sphere_grid("icosphere", 6), "bilinear")
    mesh_values = rg(values)                   # NumPy (..., nlat, nlon) -> (..., V)
    mesh_tensor = rg(tensor)                   # torch, any device, differentiable
    ds_mesh = rg(xr.open_zarr(store))          # xarray, Dask-backed stays lazy
    layer = rg.to_module()                     # a torch.nn.Module inside a model
    rg.save("weights.npz"); rg = Regridder.load("weights.npz")

Grids
-----
``src`` and ``dst`` are any two grids of :mod:`meshcnn.grids.base`: a
:class:`~meshcnn.grids.LatLonGrid`, or a sphere grid given as an icosphere level, a
:class:`~meshcnn.geometry.Mesh`, or a grid with a ``mesh`` (:class:`~meshcnn.grids.IcosphereGrid`,
:class:`~meshcnn.grids.HealpixGrid`, :class:`~meshcnn.grids.UnstructuredGrid`). Between a lat-lon
grid and a sphere grid the weights are those of :func:`~meshcnn.grids.latlon_to_mesh` and
:func:`~meshcnn.grids.mesh_to_latlon` (cached, bit for bit the same); between two grids of one kind
every method but ``conservative`` is available (the same point formulas, module
:mod:`meshcnn.grids._interp`).

Fields are ``(..., *src.shape)`` (``(..., nlat, nlon)`` in file order, or ``(..., V)``) and become
``(..., *dst.shape)``; ``weights`` is the ``scipy.sparse.csr_matrix`` ``(N_dst, N_src)`` of the flat
fields (``N = prod(shape)``), float64.

Missing values
--------------
``skipna`` and ``na_thres`` mean what they mean in xESMF. With ``skipna=True`` each output is the
weighted mean of the valid (non-NaN) inputs of its row, the weights renormalised by their valid
sum; it is NaN where the valid fraction of the row's weight
:math:`\phi = \sum_{c\,valid} W_{vc} / \sum_c W_{vc}` is below ``1 - na_thres`` (clipped to
``[1e-6, 1 - 1e-6]``, xESMF's tolerance): ``na_thres=0`` gives NaN wherever any input is missing,
``na_thres=1`` only where all are, ``0.5`` (the default) where more than half the weight is
missing. Rows that see no missing input are bit-identical to ``skipna=False``.

Laziness
--------
Dask arrays and Dask-backed xarray objects are regridded block by block
(``xarray.apply_ufunc(..., dask="parallelized")``, or ``dask.array.map_blocks``): the grid
dimensions are brought into one chunk, the other dimensions keep their chunks, and nothing is
computed until asked. Each block goes through the same NumPy kernel as an eager call, whose
every output is the same sum in the same order, so the lazy result equals the eager one bit for
bit. Dask is the optional extra ``meshcnn[dask]``.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._optional import optional_import
from ..geometry.coords import latlon_to_xyz
from ..geometry.locate import barycentric_interpolation, nearest_vertex
from ..io import array_checksum, save_npz
from . import _interp
from .families import as_sphere_grid
from .icosphere import MeshTarget, regrid_target
from .latlon import LatLonGrid
from .regrid import (
    _canonical_method,
    _check_method,
    _latlon_to_mesh,
    _mesh_to_latlon,
    apply_flat,
    check_na_thres,
    is_selection,
    latlon_grid,
    na_threshold,
)

# RegridModule is defined on first use by the module __getattr__ below (importing torch only then).
__all__ = ["Regridder", "RegridModule", "StoredGrid", "import_dask"]  # noqa: F822

#: Version of the file written by :meth:`Regridder.save`.
FORMAT_VERSION = 1


def import_dask() -> Any:
    """``dask.array``, or an ``ImportError`` naming the extra ``meshcnn[dask]``."""
    return optional_import("dask.array", "lazy (Dask) regridding needs dask", "dask")


def _is_dask(data: Any) -> bool:
    """Whether ``data`` is a Dask array (without importing Dask when nothing has)."""
    import sys

    dask_array = sys.modules.get("dask.array")
    return dask_array is not None and isinstance(data, dask_array.Array)


def _is_tensor(data: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(data, torch.Tensor)


class StoredGrid:
    """The sphere-grid side of a loaded :class:`Regridder`: its points and cell areas, without a mesh.

    Implements the grid protocol (:class:`~meshcnn.grids.base.Grid`): enough to label outputs and
    weight them by area; a regridder cannot be *built* from it (it has no mesh).

    Parameters
    ----------
    lat, lon : ndarray, shape ``(V,)``
        Degrees, of each point in order.
    areas : ndarray, shape ``(V,)``
        Cell areas, steradians, summing to :math:`4\\pi`.
    attrs : dict
        ``mesh_level``, or ``mesh_name`` and ``mesh_fingerprint``, as on regridded xarray objects.
    """

    def __init__(self, lat: np.ndarray, lon: np.ndarray, areas: np.ndarray, attrs: dict[str, Any]) -> None:
        self.lat = np.asarray(lat, dtype=np.float64)
        self.lon = np.asarray(lon, dtype=np.float64)
        self.areas = np.asarray(areas, dtype=np.float64)
        self.attrs = dict(attrs)

    def __repr__(self) -> str:
        return f"StoredGrid(V={len(self.lat)}, {self.attrs})"

    @property
    def shape(self) -> tuple[int]:
        """``(V,)``."""
        return (len(self.lat),)

    def points(self) -> np.ndarray:
        """Unit vectors ``(V, 3)``."""
        return latlon_to_xyz(np.deg2rad(self.lat), np.deg2rad(self.lon))

    def cell_areas(self) -> np.ndarray:
        """Steradians, ``(V,)``."""
        return self.areas.copy()

    @property
    def cell_weights(self) -> np.ndarray:
        """Cell areas normalised to sum to 1."""
        return self.areas / self.areas.sum()


def _as_grid(grid: Any) -> Any:
    """A :class:`LatLonGrid` or :class:`StoredGrid` as it is; anything else as a sphere grid
    (:func:`~meshcnn.grids.families.as_sphere_grid`: a level, a Mesh or a grid with a ``mesh``)."""
    if isinstance(grid, (LatLonGrid, StoredGrid)):
        return grid
    try:
        return as_sphere_grid(grid)
    except ValueError:
        raise ValueError(
            f"a regridder's grid must be a LatLonGrid, an icosphere level (int 0..9), a Mesh or a "
            f"grid with a .mesh (IcosphereGrid, HealpixGrid, UnstructuredGrid), got {grid!r}"
        ) from None


def _mesh_attrs(grid: Any) -> dict[str, Any]:
    """``mesh_level`` of an icosphere, ``mesh_name`` and ``mesh_fingerprint`` of any other mesh."""
    if isinstance(grid, StoredGrid):
        return dict(grid.attrs)
    target = regrid_target(grid)
    if isinstance(target, MeshTarget):
        return {"mesh_name": target.mesh.name or "mesh", "mesh_fingerprint": target.mesh.fingerprint}
    return {"mesh_level": int(target)}


def _file_points(grid: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors ``(N, 3)``, latitude and longitude (radians) of a grid's points in the flat order of a field."""
    if isinstance(grid, LatLonGrid):
        return grid.points(), grid.lat_rad.reshape(-1), grid.lon_rad.reshape(-1)
    return grid.mesh.vertices, grid.mesh.lat, grid.mesh.lon


def _same_kind_weights(src: Any, dst: Any, method: str) -> sp.csr_matrix:
    """Weights between two lat-lon grids or two sphere grids (every method but ``conservative``)."""
    if method == "conservative":
        raise ValueError(
            "conservative regridding is between a lat-lon grid and a sphere grid; between two "
            f"grids of one kind ({type(src).__name__} -> {type(dst).__name__}) use another method"
        )
    points, lat, lon = _file_points(dst)
    if isinstance(src, LatLonGrid):
        if method == "bilinear":
            canon = _interp.bilinear_to_points(src, lat, lon)
        elif method == "patch":
            canon = _interp.patch_from_grid(src, lat, lon)
        elif method == "nearest":
            canon = _interp.nearest_d2s(points, src.canonical_points()).T  # each point's nearest grid point
        else:
            canon = _interp.nearest_d2s(src.canonical_points(), points)
        coo = sp.coo_matrix(canon)
        out = sp.csr_matrix(
            (coo.data, (coo.row, src.file_of_canonical()[coo.col])), shape=(len(points), int(np.prod(src.shape)))
        )
        out.sum_duplicates()
        return out
    mesh = src.mesh
    if method == "bilinear":
        return sp.csr_matrix(barycentric_interpolation(mesh, points, normalize=False))
    if method == "patch":
        return _interp.patch_from_points(mesh.vertices, points)
    if method == "nearest":
        _, nearest = nearest_vertex(mesh, points)
        n = len(points)
        return sp.csr_matrix((np.ones(n), (np.arange(n), nearest)), shape=(n, mesh.num_vertices))
    return _interp.nearest_d2s(mesh.vertices, points)


def _build_weights(src: Any, dst: Any, method: str) -> sp.csr_matrix:
    """The ``(N_dst, N_src)`` weights of ``method`` (a name of :data:`~meshcnn.grids.METHODS`)."""
    if isinstance(src, StoredGrid) or isinstance(dst, StoredGrid):
        raise ValueError("a StoredGrid (the side of a loaded regridder) has no mesh to build weights on")
    method = _canonical_method(method)
    if isinstance(src, LatLonGrid) and not isinstance(dst, LatLonGrid):
        return _latlon_to_mesh(src.lat, src.lon, regrid_target(dst), method)
    if isinstance(dst, LatLonGrid) and not isinstance(src, LatLonGrid):
        return _mesh_to_latlon(dst.lat, dst.lon, regrid_target(src), method)
    return _same_kind_weights(src, dst, method)


class Regridder:
    """Regridding weights from grid ``src`` to grid ``dst``, applied to NumPy, torch, Dask or xarray data.

    Parameters
    ----------
    src, dst : grid
        A :class:`~meshcnn.grids.LatLonGrid`, an icosphere level, a :class:`~meshcnn.geometry.Mesh`,
        or a grid with a ``mesh`` (module docstring).
    method : one of :data:`meshcnn.grids.METHODS`
        ``"bilinear"`` (default), ``"nearest"`` (= ``"nearest_s2d"``), ``"conservative"``,
        ``"patch"`` (higher order, for smooth fields) or ``"nearest_d2s"``
        (:mod:`meshcnn.grids.regrid`, :mod:`meshcnn.grids._interp`).
    skipna : bool
        Default for calls: regrid from the valid (non-NaN) inputs only (module docstring).
    na_thres : float
        Default for calls, in ``[0, 1]``: with ``skipna``, NaN where more than this fraction of an
        output's weight is missing (xESMF's meaning; module docstring).

    Attributes
    ----------
    src, dst : grid
        The grids (a lat-lon grid, or the sphere grid of :func:`~meshcnn.grids.families.as_sphere_grid`; after
        :meth:`load`, a :class:`StoredGrid` for a sphere side).
    method : str
    weights : scipy.sparse.csr_matrix, shape ``(N_dst, N_src)``
        float64; do not modify it in place (the torch and float32 copies are made from it once).
    src_shape, dst_shape : tuple of int
        Shape of one field on each grid.
    """

    def __init__(
        self, src: Any, dst: Any, method: str = "bilinear", *, skipna: bool = False, na_thres: float = 0.5
    ) -> None:
        self.method = _check_method(method)
        self.src, self.dst = _as_grid(src), _as_grid(dst)
        self._setup(_build_weights(self.src, self.dst, self.method), skipna, na_thres)

    @classmethod
    def from_weights(
        cls, weights: Any, src: Any, dst: Any, method: str = "bilinear", *, skipna: bool = False, na_thres: float = 0.5
    ) -> Regridder:
        """A regridder of given weights (e.g. made by another tool) between ``src`` and ``dst``.

        Parameters
        ----------
        weights : sparse or dense ``(N_dst, N_src)``
        src, dst : grid, or any object with a ``shape``
            Grids as in the constructor; anything else is used for its ``shape`` only (no xarray labels).
        method : str
            The name recorded (one of :data:`~meshcnn.grids.METHODS`).
        skipna, na_thres
            As in the constructor.
        """
        out = cls.__new__(cls)
        out.method = _check_method(method)
        out.src, out.dst = (
            g if hasattr(g, "shape") and not isinstance(g, (int, np.integer)) else _as_grid(g) for g in (src, dst)
        )
        out._setup(sp.csr_matrix(weights), skipna, na_thres)
        return out

    def _setup(self, weights: sp.csr_matrix, skipna: bool, na_thres: float) -> None:
        self.weights = sp.csr_matrix(weights, dtype=np.float64)
        self.skipna = bool(skipna)
        self.na_thres = check_na_thres(na_thres)
        self.src_shape = tuple(int(n) for n in self.src.shape)
        self.dst_shape = tuple(int(n) for n in self.dst.shape)
        expected = (int(np.prod(self.dst_shape)), int(np.prod(self.src_shape)))
        if self.weights.shape != expected:
            raise ValueError(f"weights of shape {self.weights.shape} do not fit the grids ({expected})")
        self._weights32: sp.csr_matrix | None = None
        self._selection: bool | None = None
        self._torch: dict[Any, Any] = {}
        self._token: str | None = None

    def __repr__(self) -> str:
        return (
            f"Regridder({self.src!r} -> {self.dst!r}, method={self.method!r}, skipna={self.skipna}, "
            f"na_thres={self.na_thres:g}, {self.weights.nnz} weights)"
        )

    def __getstate__(self) -> dict[str, Any]:  # sent to Dask workers: without the device copies
        return {**self.__dict__, "_torch": {}}

    def __dask_tokenize__(self) -> tuple[str, str]:
        """A deterministic Dask token: the method and the SHA-256 of the weights and shapes (computed once)."""
        if getattr(self, "_token", None) is None:
            self._token = array_checksum(
                {
                    "data": self.weights.data,
                    "indices": self.weights.indices,
                    "indptr": self.weights.indptr,
                    "src": np.asarray(self.src_shape),
                    "dst": np.asarray(self.dst_shape),
                }
            )
        return ("meshcnn.Regridder", f"{self.method}:{self._token}")

    # ------------------------------------------------------------------ calling
    def __call__(
        self,
        data: Any,
        *,
        skipna: bool | None = None,
        na_thres: float | None = None,
        lat_name: str | None = None,
        lon_name: str | None = None,
        vertex_name: str = "vertex",
    ) -> Any:
        """Regrid ``data``.

        Parameters
        ----------
        data : ndarray, torch.Tensor, dask.array.Array, xarray.DataArray or xarray.Dataset
            Fields on ``src``: arrays ``(..., *src_shape)``; xarray objects with the grid's
            dimensions (any position; a lat-lon grid's found by ``lat_name``/``lon_name``, their CF
            ``standard_name``/``units``, or the usual names; a sphere grid's is ``vertex_name``).
        skipna, na_thres : optional
            Override the regridder's defaults (module docstring).
        lat_name, lon_name : str, optional
            xarray only: the lat-lon dimensions of the input (lat-lon ``src``) or of the output
            (lat-lon ``dst``, default ``"lat"``, ``"lon"``).
        vertex_name : str
            xarray only: the sphere grid's dimension, in the input or the output (default ``"vertex"``).

        Returns
        -------
        Same kind as ``data``
            ``(..., *dst_shape)``: NumPy in, NumPy out (integer input through ``nearest`` keeps its
            dtype; otherwise floating, float32 stays float32); a tensor on the same device,
            differentiable; Dask and Dask-backed xarray lazy, with the input's chunks along the other
            dimensions; xarray with the attributes and the coordinates off the grid kept, the grid's
            own replaced (CF ``units`` and ``standard_name``), and ``regrid_method`` and the mesh
            attributes (``mesh_level``, or ``mesh_name`` and ``mesh_fingerprint``) added.
        """
        skipna = self.skipna if skipna is None else bool(skipna)
        na_thres = self.na_thres if na_thres is None else check_na_thres(na_thres)
        if _is_tensor(data):
            return self.regrid_tensor(data, skipna=skipna, na_thres=na_thres)
        if _is_dask(data):
            return self.regrid_dask(data, skipna=skipna, na_thres=na_thres)
        if type(data).__module__.split(".")[0] == "xarray":
            from ._xarray import regrid_xarray

            return regrid_xarray(
                self,
                data,
                skipna=skipna,
                na_thres=na_thres,
                lat_name=lat_name,
                lon_name=lon_name,
                vertex_name=vertex_name,
            )
        return self.regrid_numpy(data, skipna=skipna, na_thres=na_thres)

    def _lead(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Leading shape of a field array; ``ValueError`` if its last axes are not ``src_shape``."""
        k = len(self.src_shape)
        if len(shape) >= k and tuple(shape[len(shape) - k :]) == self.src_shape:
            return tuple(shape[: len(shape) - k])
        hint = " (a transposed (lon, lat) field?)" if k == 2 and tuple(shape[-2:]) == self.src_shape[::-1] else ""
        raise ValueError(
            f"values of shape {tuple(shape)} do not match the source grid: the last axes must be {self.src_shape}{hint}"
        )

    def output_dtype(self, dtype: Any) -> np.dtype:
        """The dtype of the output for an input of ``dtype`` (NumPy and Dask)."""
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating) and self.is_selection:
            return dtype
        return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)

    @property
    def is_selection(self) -> bool:
        """Whether each output is one input with weight 1 (``nearest``), so integers stay integers."""
        if self._selection is None:
            self._selection = is_selection(self.weights)
        return self._selection

    def regrid_numpy(self, values: Any, *, skipna: bool | None = None, na_thres: float | None = None) -> np.ndarray:
        """The NumPy path of :meth:`__call__`: ``(..., *src_shape)`` -> ``(..., *dst_shape)``.

        The kernel of :func:`meshcnn.grids.regrid.apply` (one sparse product per field, the same sums in the
        same order whatever the batch).
        """
        skipna = self.skipna if skipna is None else skipna
        na_thres = self.na_thres if na_thres is None else na_thres
        values = np.asarray(values)
        lead = self._lead(values.shape)
        weights32 = None
        if values.dtype == np.float32:
            if self._weights32 is None:
                self._weights32 = self.weights.astype(np.float32)
            weights32 = self._weights32
        out = apply_flat(
            self.weights,
            values.reshape(-1, self.weights.shape[1]),
            skipna=skipna,
            na_thres=na_thres,
            weights32=weights32,
        )
        return out.reshape(lead + self.dst_shape)

    def regrid_dask(self, array: Any, *, skipna: bool | None = None, na_thres: float | None = None) -> Any:
        """The Dask path of :meth:`__call__`: lazy, block by block over the leading axes (grid axes in one chunk)."""
        skipna = self.skipna if skipna is None else skipna
        na_thres = self.na_thres if na_thres is None else na_thres
        import_dask()
        lead = self._lead(array.shape)
        n, k_in, k_out = len(lead), len(self.src_shape), len(self.dst_shape)
        array = array.rechunk({axis: -1 for axis in range(n, n + k_in)})
        chunks = array.chunks[:n] + tuple((size,) for size in self.dst_shape)
        kwargs: dict[str, Any] = {}
        if k_in > k_out:
            kwargs["drop_axis"] = list(range(n + k_out, n + k_in))
        elif k_out > k_in:
            kwargs["new_axis"] = list(range(n + k_in, n + k_out))
        return array.map_blocks(
            _regrid_block,
            self,
            skipna,
            na_thres,
            chunks=chunks,
            dtype=self.output_dtype(array.dtype),
            meta=np.empty((0,) * (n + k_out)),
            **kwargs,
        )

    # ------------------------------------------------------------------ torch
    def _torch_parts(self, device: Any, dtype: Any) -> tuple[Any, Any]:
        """The weights and their transpose as torch CSR tensors on ``device`` in ``dtype`` (kept per pair)."""
        key = (str(device), str(dtype))
        if key not in self._torch:
            self._torch[key] = _torch_csr_pair(self.weights, device, dtype)
        return self._torch[key]

    def regrid_tensor(self, tensor: Any, *, skipna: bool | None = None, na_thres: float | None = None) -> Any:
        """The torch path of :meth:`__call__`: ``(..., *src_shape)`` -> ``(..., *dst_shape)`` on the tensor's
        device, differentiable (the backward pass is the transposed product). Integer tensors through
        ``nearest`` are indexed; other integers become the default float dtype."""
        import torch

        skipna = self.skipna if skipna is None else skipna
        na_thres = self.na_thres if na_thres is None else na_thres
        lead = self._lead(tuple(tensor.shape))
        flat = tensor.reshape(-1, self.weights.shape[1])
        if not (tensor.is_floating_point() or tensor.is_complex()):
            if self.is_selection:
                index = torch.as_tensor(self.weights.indices, dtype=torch.long, device=tensor.device)
                return flat.index_select(1, index).reshape(lead + self.dst_shape)
            flat = flat.to(torch.get_default_dtype())
        w, wt = self._torch_parts(flat.device, flat.dtype)
        out = _torch_regrid(flat, w, wt, skipna, na_thres)
        return out.reshape(lead + self.dst_shape)

    def to_module(self) -> Any:
        """A :class:`RegridModule` (a ``torch.nn.Module``) applying these weights: buffers, so they follow
        ``.to(device)`` and the state dict."""
        return _regrid_module_class()(self)

    # ------------------------------------------------------------------ save and load
    def save(self, path: str | os.PathLike) -> None:
        """Write the weights and both grids' descriptions to ``path`` (``.npz``, atomic, no pickles).

        The file holds the CSR arrays, each side's coordinates (a lat-lon grid's 1-D ``lat`` and
        ``lon``; a sphere grid's point ``lat``, ``lon`` and cell areas), a JSON header (method,
        ``skipna``, ``na_thres``, kinds, shapes, mesh attributes) and the SHA-256 of all of it.
        """
        arrays: dict[str, np.ndarray] = {
            "data": self.weights.data,
            "indices": self.weights.indices.astype(np.int64),
            "indptr": self.weights.indptr.astype(np.int64),
            "shape": np.asarray(self.weights.shape, dtype=np.int64),
        }
        meta: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "method": self.method,
            "skipna": self.skipna,
            "na_thres": self.na_thres,
        }
        for side, grid in (("src", self.src), ("dst", self.dst)):
            if isinstance(grid, LatLonGrid):
                meta[side] = {"kind": "latlon"}
                arrays[f"{side}_lat"], arrays[f"{side}_lon"] = grid.lat, grid.lon
            else:
                meta[side] = {"kind": "sphere", "attrs": _mesh_attrs(grid)}
                lat, lon = (
                    (grid.lat, grid.lon)
                    if isinstance(grid, StoredGrid)
                    else (np.rad2deg(grid.mesh.lat), np.rad2deg(grid.mesh.lon))
                )
                arrays[f"{side}_lat"], arrays[f"{side}_lon"] = lat, lon
                arrays[f"{side}_areas"] = np.asarray(grid.cell_areas(), dtype=np.float64).reshape(-1)
        arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
        save_npz(path, checksum=np.array(array_checksum(arrays)), **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Regridder:
        """A regridder written by :meth:`save`.

        Raises
        ------
        ValueError
            A file that is not one, damaged (its SHA-256 does not match) or of another format version.
        FileNotFoundError
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such regridder file")
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except zipfile.BadZipFile as exc:
            raise ValueError(f"{path}: the regridder file fails its checksum (damaged: {exc})") from exc
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"{path}: not a regridder file ({exc})") from exc
        try:
            checksum = str(arrays.pop("checksum"))
            meta = json.loads(str(arrays["meta"]))
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise ValueError(f"{path}: not a regridder file ({exc})") from exc
        if checksum != array_checksum(arrays):
            raise ValueError(f"{path}: the regridder file fails its SHA-256 checksum (damaged or incomplete)")
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: regridder file format {meta.get('format')!r}, this meshcnn reads {FORMAT_VERSION}"
            )
        sides = {}
        for side in ("src", "dst"):
            if meta[side]["kind"] == "latlon":
                sides[side] = latlon_grid(arrays[f"{side}_lat"], arrays[f"{side}_lon"])
            else:
                sides[side] = StoredGrid(
                    arrays[f"{side}_lat"], arrays[f"{side}_lon"], arrays[f"{side}_areas"], meta[side]["attrs"]
                )
        weights = sp.csr_matrix(
            (arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(int(n) for n in arrays["shape"])
        )
        out = cls.__new__(cls)
        out.method = _check_method(meta["method"])
        out.src, out.dst = sides["src"], sides["dst"]
        out._setup(weights, meta["skipna"], meta["na_thres"])
        return out


def _regrid_block(block: np.ndarray, regridder: Regridder, skipna: bool, na_thres: float) -> np.ndarray:
    """One Dask block through the NumPy kernel."""
    return regridder.regrid_numpy(block, skipna=skipna, na_thres=na_thres)


# ---------------------------------------------------------------------- torch
def _csr_tensor(crow: Any, col: Any, values: Any, shape: tuple[int, int]) -> Any:
    """A torch CSR tensor of checked parts (torch's beta-state warning silenced)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, size=shape, check_invariants=False)


def _torch_csr_pair(weights: sp.csr_matrix, device: Any, dtype: Any) -> tuple[Any, Any]:
    import torch

    def csr(m: sp.csr_matrix) -> Any:
        m = sp.csr_matrix(m)
        return _csr_tensor(
            torch.as_tensor(m.indptr, dtype=torch.int64, device=device),
            torch.as_tensor(m.indices, dtype=torch.int64, device=device),
            torch.as_tensor(m.data, dtype=dtype, device=device),
            m.shape,
        )

    return csr(weights), csr(weights.T)


def _sparse_matmul_function() -> Any:
    """The autograd function ``x (B, N_in) -> (W x^T)^T`` with backward ``g -> (W^T g^T)^T`` (made once)."""
    global _SPARSE_MATMUL
    if _SPARSE_MATMUL is None:
        import torch

        class SparseMatmul(torch.autograd.Function):
            @staticmethod
            def forward(ctx: Any, x: Any, w: Any, wt: Any) -> Any:
                ctx.wt = wt
                return (w @ x.t().contiguous()).t()

            @staticmethod
            def backward(ctx: Any, grad: Any) -> Any:
                return (ctx.wt @ grad.t().contiguous()).t(), None, None

        _SPARSE_MATMUL = SparseMatmul
    return _SPARSE_MATMUL


_SPARSE_MATMUL: Any = None


def _torch_regrid(flat: Any, w: Any, wt: Any, skipna: bool, na_thres: float) -> Any:
    """``(B, N_in)`` -> ``(B, N_out)`` with the CSR tensors ``w`` and ``wt = w^T``; ``skipna`` as in NumPy."""
    import torch

    matmul = _sparse_matmul_function().apply
    if not skipna:
        return matmul(flat, w, wt)
    missing = torch.isnan(flat)
    if not bool(missing.any()):
        return matmul(flat, w, wt)
    filled = torch.where(missing, torch.zeros((), dtype=flat.dtype, device=flat.device), flat)
    num = matmul(filled, w, wt)
    with torch.no_grad():
        valid = (w @ (~missing).to(flat.dtype).t().contiguous()).t()
        pattern = _csr_tensor(w.crow_indices(), w.col_indices(), torch.ones_like(w.values()), tuple(w.shape))
        touched = (pattern @ missing.to(flat.dtype).t().contiguous()).t() > 0
        ones = torch.ones(w.shape[1], 1, dtype=flat.dtype, device=flat.device)
        row_sum = (w @ ones).reshape(1, -1)
        fraction = torch.where(
            row_sum > 0, valid / torch.where(row_sum > 0, row_sum, torch.ones_like(row_sum)), torch.zeros_like(valid)
        )
        empty = (valid <= 0) | (fraction < na_threshold(na_thres))
        safe = torch.where(valid > 0, valid, torch.ones_like(valid))
    renorm = num / safe * row_sum
    nan = torch.full((), float("nan"), dtype=flat.dtype, device=flat.device)
    return torch.where(touched, torch.where(empty, nan, renorm), num)


_REGRID_MODULE: Any = None


def _regrid_module_class() -> Any:
    """:class:`RegridModule`, defined on first use (so that importing :mod:`meshcnn.grids` does not import torch)."""
    global _REGRID_MODULE
    if _REGRID_MODULE is not None:
        return _REGRID_MODULE
    import torch

    class RegridModule(torch.nn.Module):
        """A :class:`Regridder` as a ``torch.nn.Module``: ``forward(x)`` maps ``(..., *src_shape)`` to
        ``(..., *dst_shape)``, differentiably.

        The CSR arrays of the weights and of their transpose are buffers, so the module follows
        ``.to(device)`` / ``.to(dtype)`` and is saved in the state dict; ``skipna`` and ``na_thres`` are the
        regridder's.

        Parameters
        ----------
        regridder : Regridder
        """

        def __init__(self, regridder: Regridder) -> None:
            super().__init__()
            self.src_shape, self.dst_shape = regridder.src_shape, regridder.dst_shape
            self.skipna, self.na_thres, self.method = regridder.skipna, regridder.na_thres, regridder.method
            self.shape = tuple(regridder.weights.shape)
            for prefix, m in (("w", regridder.weights), ("wt", sp.csr_matrix(regridder.weights.T))):
                self.register_buffer(f"{prefix}_crow", torch.as_tensor(m.indptr, dtype=torch.int64))
                self.register_buffer(f"{prefix}_col", torch.as_tensor(m.indices, dtype=torch.int64))
                self.register_buffer(f"{prefix}_val", torch.as_tensor(m.data, dtype=torch.float64))

        def extra_repr(self) -> str:
            return f"{self.src_shape} -> {self.dst_shape}, method={self.method!r}, skipna={self.skipna}"

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            k = len(self.src_shape)
            if tuple(x.shape[x.dim() - k :]) != self.src_shape:
                raise ValueError(f"input of shape {tuple(x.shape)}: the last axes must be {self.src_shape}")
            lead = tuple(x.shape[: x.dim() - k])
            flat = x.reshape(-1, self.shape[1])
            if not flat.is_floating_point():
                flat = flat.to(self.w_val.dtype)
            w = _csr_tensor(self.w_crow, self.w_col, self.w_val.to(flat.dtype), self.shape)
            wt = _csr_tensor(self.wt_crow, self.wt_col, self.wt_val.to(flat.dtype), self.shape[::-1])
            return _torch_regrid(flat, w, wt, self.skipna, self.na_thres).reshape(lead + self.dst_shape)

    RegridModule.__module__ = __name__
    _REGRID_MODULE = RegridModule
    return RegridModule


def __getattr__(name: str) -> Any:
    if name == "RegridModule":
        return _regrid_module_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
