"""xarray front end of the regridders: DataArrays and Datasets between lat-lon grids and a mesh.

The mesh side is an icosphere level, a :class:`~meshcnn.geometry.Mesh` or a grid with a ``mesh``
(:class:`~meshcnn.grids.HealpixGrid`, :class:`~meshcnn.grids.IcosphereGrid`), as in
:func:`meshcnn.grids.latlon_to_mesh`. Results carry the attribute ``mesh_level`` (an icosphere)
or ``mesh_name`` and ``mesh_fingerprint`` (any other mesh), and ``regrid_method``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..geometry.mesh import Mesh, icosphere, level_of
from .icosphere import MeshTarget, regrid_target
from .regrid import _check_method, apply, latlon_to_mesh, mesh_to_latlon

__all__ = ["regrid_dataarray", "mesh_dataarray_to_latlon"]

_LAT_NAMES = ("lat", "latitude", "nav_lat", "y")
_LON_NAMES = ("lon", "longitude", "nav_lon", "x")


def _import_xarray():
    try:
        import xarray
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "regrid_dataarray needs xarray; install the optional extra: pip install 'meshcnn[climate]'"
        ) from exc
    return xarray


def _find_dim(obj, names: tuple[str, ...], given: str | None, what: str) -> str:
    if given is not None:
        if given not in obj.dims:
            raise ValueError(f"{what} dimension {given!r} not among the dimensions {tuple(obj.dims)}")
        return given
    for name in names:
        if name in obj.dims:
            return name
    raise ValueError(f"no {what} dimension found among {tuple(obj.dims)} (looked for {names}); pass {what}_name=")


def _mesh_attrs(target: int | MeshTarget) -> dict[str, Any]:
    """``mesh_level`` of an icosphere, ``mesh_name`` and ``mesh_fingerprint`` of any other mesh."""
    if isinstance(target, MeshTarget):
        return {"mesh_name": target.mesh.name or "mesh", "mesh_fingerprint": target.mesh.fingerprint}
    return {"mesh_level": target}


def _regrid_dataset(xr: Any, obj: Any, level: Any, method: str, lat_name: str | None, lon_name: str | None,
                    skipna: bool, na_thresh: float) -> Any:
    """:func:`regrid_dataarray` of a Dataset: variables on the grid regridded, grid-free ones kept."""
    lat_dim = _find_dim(obj, _LAT_NAMES, lat_name, "lat")
    lon_dim = _find_dim(obj, _LON_NAMES, lon_name, "lon")
    out = {}
    for name, var in obj.data_vars.items():
        has = (lat_dim in var.dims, lon_dim in var.dims)
        if all(has):
            out[name] = regrid_dataarray(var, level, method, lat_name=lat_dim, lon_name=lon_dim,
                                         skipna=skipna, na_thresh=na_thresh)
        elif not any(has):
            out[name] = var
    ds = xr.Dataset(out, attrs=dict(obj.attrs))
    ds.attrs.update(_mesh_attrs(regrid_target(level)), regrid_method=method)
    return ds


def regrid_dataarray(
    obj: Any,
    level: int | Mesh | Any,
    method: str = "bilinear",
    *,
    lat_name: str | None = None,
    lon_name: str | None = None,
    skipna: bool = False,
    na_thresh: float = 0.5,
) -> Any:
    """Regrid an ``xarray.DataArray`` or ``Dataset`` on a lat-lon grid to the icosphere of ``level`` (or a mesh).

    The latitude/longitude dimensions (``lat``/``lon``, ``latitude``/``longitude``, or
    ``lat_name``/``lon_name``) must carry 1-D coordinates in degrees. They are replaced
    by a ``vertex`` dimension of length ``V`` (in the mesh's vertex order: a HEALPix grid's
    pixel order), with coordinates ``lat`` and ``lon`` (degrees, lon in ``(-180, 180]``) of
    each vertex; the other dimensions and their coordinates are kept. A ``Dataset`` gives a
    ``Dataset``: variables with both grid dimensions are regridded, variables with neither are
    kept, the rest (such as ``lat_bnds``) dropped. The attributes ``regrid_method`` and
    ``mesh_level`` (an icosphere) or ``mesh_name`` and ``mesh_fingerprint`` (another mesh) are added.

    ``skipna=True`` regrids fields with missing values (NaN, e.g. a land-masked
    sea-surface temperature) from their valid points only; vertices whose valid
    inputs carry less than ``na_thresh`` of the weight are NaN (see :func:`apply`).

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
    level : int, Mesh or grid with a ``mesh``
        Icosphere level, or any mesh or grid (:func:`~meshcnn.grids.latlon_to_mesh`).
    method : {"bilinear", "nearest", "conservative"}
        Default ``"bilinear"``.
    lat_name, lon_name : str, optional
        The grid dimensions; default: found among the usual names.
    skipna : bool
        Regrid from the valid points only (default ``False``).
    na_thresh : float
        Smallest valid weight fraction for a non-NaN output (default 0.5).

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        With a ``vertex`` dimension in place of the grid dimensions.

    Raises
    ------
    TypeError
        If ``obj`` is neither a DataArray nor a Dataset.
    ValueError
        If the coordinates are 2-D (a curvilinear grid) or a grid dimension has no coordinate.
    """
    xr = _import_xarray()
    target = regrid_target(level)
    _check_method(method)
    if isinstance(obj, xr.Dataset):
        return _regrid_dataset(xr, obj, level, method, lat_name, lon_name, skipna, na_thresh)
    if not isinstance(obj, xr.DataArray):
        raise TypeError(f"expected an xarray DataArray or Dataset, got {type(obj).__name__}")
    lat_dim = _find_dim(obj, _LAT_NAMES, lat_name, "lat")
    lon_dim = _find_dim(obj, _LON_NAMES, lon_name, "lon")
    curvilinear = [n for n in ("lat", "lon", "latitude", "longitude") if n in obj.coords and obj[n].ndim == 2]
    if curvilinear:
        raise ValueError(f"coordinates {curvilinear} are 2-D: a curvilinear grid; regrid it to 1-D latitude and "
                         f"longitude coordinates first (meshcnn regrids rectilinear lat-lon grids)")
    for dim in (lat_dim, lon_dim):
        if dim not in obj.coords:
            raise ValueError(f"dimension {dim!r} has no coordinate values (degrees needed)")
    lat = obj[lat_dim].values
    lon = obj[lon_dim].values
    matrix = latlon_to_mesh(lat, lon, target if isinstance(target, int) else level, method)
    da = obj.transpose(..., lat_dim, lon_dim)
    lead = da.dims[:-2]
    values = apply(matrix, da.values, skipna=skipna, na_thresh=na_thresh)
    mesh = icosphere(target) if isinstance(target, int) else target.mesh
    coords = {
        name: coord
        for name, coord in da.coords.items()
        if lat_dim not in coord.dims and lon_dim not in coord.dims and name not in ("lat", "lon")
    }
    coords["lat"] = ("vertex", np.rad2deg(mesh.lat))
    coords["lon"] = ("vertex", np.rad2deg(mesh.lon))
    attrs = dict(obj.attrs)
    attrs.update(_mesh_attrs(target), regrid_method=method)
    return xr.DataArray(values, dims=lead + ("vertex",), coords=coords, name=obj.name, attrs=attrs)


def mesh_dataarray_to_latlon(
    obj: Any,
    lat: Any,
    lon: Any,
    method: str = "bilinear",
    *,
    vertex_name: str = "vertex",
    lat_name: str = "lat",
    lon_name: str = "lon",
    skipna: bool = False,
    na_thresh: float = 0.5,
    mesh: int | Mesh | Any | None = None,
) -> Any:
    """The inverse direction of :func:`regrid_dataarray`: an ``xarray.DataArray`` on a mesh
    (a ``vertex`` dimension of length ``V``) to the lat-lon grid ``(lat, lon)``.

    The mesh is ``mesh`` if given (a level, a Mesh or a grid such as
    :class:`~meshcnn.grids.HealpixGrid`, with ``V`` vertices), else the icosphere level found
    from ``V``. ``vertex`` is replaced by the dimensions ``lat_name``,
    ``lon_name`` with the given coordinates (degrees, in the given order); the other
    dimensions, their coordinates and the attributes are kept (``mesh_level``, or ``mesh_name`` and
    ``mesh_fingerprint``, and ``regrid_method`` are updated). ``skipna``/``na_thresh`` as in :func:`apply`.

    Parameters
    ----------
    obj : xarray.DataArray
    lat, lon : array_like
        Target coordinates, degrees.
    method : {"bilinear", "nearest", "conservative"}
        Default ``"bilinear"``.
    vertex_name : str
        The mesh dimension (default ``"vertex"``).
    lat_name, lon_name : str
        The new dimensions (default ``"lat"``, ``"lon"``).
    skipna : bool
    na_thresh : float
    mesh : int, Mesh or grid with a ``mesh``, optional
        The mesh the data are on; default: the icosphere level with ``V`` vertices.

    Returns
    -------
    xarray.DataArray

    Raises
    ------
    TypeError
        If ``obj`` is not a DataArray.
    ValueError
        If it has no ``vertex_name`` dimension, or its length is not that of ``mesh`` or (without
        ``mesh``) of an icosphere level.
    """
    xr = _import_xarray()
    _check_method(method)
    if not isinstance(obj, xr.DataArray):
        raise TypeError(f"expected an xarray DataArray, got {type(obj).__name__}")
    if vertex_name not in obj.dims:
        raise ValueError(f"no {vertex_name!r} dimension among {tuple(obj.dims)}")
    size = obj.sizes[vertex_name]
    if mesh is None:
        target = level_of(size)
        if target is None:
            raise ValueError(f"{size} vertices is not an icosphere level; give the mesh or grid as mesh=")
    else:
        target = regrid_target(mesh)
        num_vertices = icosphere(target).num_vertices if isinstance(target, int) else target.mesh.num_vertices
        if num_vertices != size:
            raise ValueError(f"the {vertex_name!r} dimension has {size} values but the mesh has "
                             f"{num_vertices} vertices")
    lat_a, lon_a = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    matrix = mesh_to_latlon(target if isinstance(target, int) else mesh, lat_a, lon_a, method)
    da = obj.transpose(..., vertex_name)
    lead = da.dims[:-1]
    values = apply(matrix, da.values, skipna=skipna, na_thresh=na_thresh)
    values = values.reshape(values.shape[:-1] + (len(lat_a), len(lon_a)))
    coords = {name: coord for name, coord in da.coords.items() if vertex_name not in coord.dims}
    coords[lat_name] = (lat_name, lat_a, {"units": "degrees_north"})
    coords[lon_name] = (lon_name, lon_a, {"units": "degrees_east"})
    attrs = dict(obj.attrs)
    for stale in ("mesh_level", "mesh_name", "mesh_fingerprint"):
        attrs.pop(stale, None)
    attrs.update(_mesh_attrs(target), regrid_method=method)
    return xr.DataArray(values, dims=lead + (lat_name, lon_name), coords=coords, name=obj.name, attrs=attrs)
