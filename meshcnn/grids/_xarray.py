"""xarray front end of the regridders: DataArrays and Datasets, eager or Dask-backed (lazy).

:func:`regrid_xarray` is what a :class:`~meshcnn.grids.Regridder` does with an xarray object;
:func:`regrid_dataarray` (lat-lon -> mesh) and :func:`mesh_dataarray_to_latlon` (mesh -> lat-lon)
build the regridder from the object's coordinates and call it.

The mesh side is an icosphere level, a :class:`~meshcnn.geometry.Mesh` or a grid with a ``mesh``
(:class:`~meshcnn.grids.HealpixGrid`, :class:`~meshcnn.grids.IcosphereGrid`), as in
:func:`meshcnn.grids.latlon_to_mesh`. Results carry the attribute ``mesh_level`` (an icosphere)
or ``mesh_name`` and ``mesh_fingerprint`` (any other mesh), and ``regrid_method``.

CF conventions: a lat-lon dimension is found by its name if given, else by its coordinate's CF
``standard_name`` (``latitude``/``longitude``) or ``units`` (``degrees_north``/``degrees_east``
and their variants), else among the usual names. New coordinates carry CF ``units``,
``standard_name`` and ``long_name``; coordinates and variables on the old grid (bounds such as
``lat_bnds``) are dropped, and so are the attributes that point at them (``bounds``,
``cell_measures``, ``grid_mapping``, ``coordinates``); the other attributes, coordinates and
``name`` are kept. Dask-backed inputs stay lazy (:mod:`meshcnn.grids.regridder`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._optional import optional_import
from ..geometry.mesh import Mesh, level_of
from .latlon import LatLonGrid
from .regrid import _check_method, check_na_thres, latlon_grid

__all__ = ["regrid_dataarray", "mesh_dataarray_to_latlon", "regrid_xarray", "latlon_dims"]

_LAT_NAMES = ("lat", "latitude", "nav_lat", "y")
_LON_NAMES = ("lon", "longitude", "nav_lon", "x")
_CF_UNITS = {
    "lat": ("degrees_north", "degree_north", "degree_N", "degrees_N", "degreeN", "degreesN"),
    "lon": ("degrees_east", "degree_east", "degree_E", "degrees_E", "degreeE", "degreesE"),
}
_CF_NAMES = {"lat": "latitude", "lon": "longitude"}
#: Attributes that refer to the grid's own variables, dropped from regridded variables.
_GRID_ATTRS = ("bounds", "cell_measures", "grid_mapping", "coordinates")
_STALE_MESH_ATTRS = ("mesh_level", "mesh_name", "mesh_fingerprint")


def _import_xarray(purpose: str = "regrid_dataarray needs xarray") -> Any:
    """The xarray module, or an ImportError that says what needs it (``purpose``) and names the extra."""
    return optional_import("xarray", purpose, "climate")


def _find_dim(obj: Any, names: tuple[str, ...], given: str | None, what: str) -> str:
    """The ``what`` (``"lat"`` or ``"lon"``) dimension: ``given``, else by CF attributes, else by name."""
    if given is not None:
        if given not in obj.dims:
            raise ValueError(f"{what} dimension {given!r} not among the dimensions {tuple(obj.dims)}")
        return given
    for dim in obj.dims:
        if dim in obj.coords:
            attrs = obj[dim].attrs
            if attrs.get("standard_name") == _CF_NAMES[what] or attrs.get("units") in _CF_UNITS[what]:
                return dim
    for name in names:
        if name in obj.dims:
            return name
    raise ValueError(
        f"no {what} dimension found among {tuple(obj.dims)} (looked for CF standard_name/units and "
        f"{names}); pass {what}_name="
    )


def latlon_dims(obj: Any, lat_name: str | None = None, lon_name: str | None = None) -> tuple[str, str]:
    """The latitude and longitude dimensions of an xarray object, checked to carry 1-D coordinates.

    Found as :func:`regrid_dataarray` finds them: the given names, else by CF ``standard_name`` or
    ``units``, else by the usual names (``lat``/``latitude``/..., ``lon``/``longitude``/...).

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
    lat_name, lon_name : str, optional
        The dimensions' names, when known.

    Returns
    -------
    tuple of str
        ``(lat_dim, lon_dim)``.

    Raises
    ------
    ValueError
        A dimension not found, a 2-D (curvilinear) coordinate, or a dimension without coordinate values.
    """
    lat_dim = _find_dim(obj, _LAT_NAMES, lat_name, "lat")
    lon_dim = _find_dim(obj, _LON_NAMES, lon_name, "lon")
    curvilinear = [n for n in ("lat", "lon", "latitude", "longitude") if n in obj.coords and obj[n].ndim == 2]
    if curvilinear:
        raise ValueError(
            f"coordinates {curvilinear} are 2-D: a curvilinear grid; regrid it to 1-D latitude and "
            f"longitude coordinates first (meshcnn regrids rectilinear lat-lon grids)"
        )
    for dim in (lat_dim, lon_dim):
        if dim not in obj.coords:
            raise ValueError(f"dimension {dim!r} has no coordinate values (degrees needed)")
    return lat_dim, lon_dim


def _coordinate_attrs(what: str) -> dict[str, str]:
    return {"units": _CF_UNITS[what][0], "standard_name": _CF_NAMES[what], "long_name": _CF_NAMES[what]}


def _out_attrs(attrs: dict[str, Any], regridder: Any) -> dict[str, Any]:
    """The attributes of a regridded object: the input's, less those of the old grid, plus the mesh's."""
    from .regridder import _mesh_attrs

    out = {k: v for k, v in attrs.items() if k not in _GRID_ATTRS and k not in _STALE_MESH_ATTRS}
    mesh_side = regridder.dst if not isinstance(regridder.dst, LatLonGrid) else regridder.src
    if not isinstance(mesh_side, LatLonGrid):
        out.update(_mesh_attrs(mesh_side))
    out["regrid_method"] = regridder.method
    return out


def _in_dims(regridder: Any, obj: Any, lat_name: str | None, lon_name: str | None, vertex_name: str) -> list[str]:
    """The input's grid dimensions, checked against the regridder's source grid."""
    src = regridder.src
    if isinstance(src, LatLonGrid):
        lat_dim, lon_dim = latlon_dims(obj, lat_name, lon_name)
        lat, lon = np.asarray(obj[lat_dim].values, dtype=np.float64), np.asarray(obj[lon_dim].values, np.float64)
        if (
            lat.shape != src.lat.shape
            or lon.shape != src.lon.shape
            or not (np.allclose(lat, src.lat, rtol=0, atol=1e-6) and np.allclose(lon, src.lon, rtol=0, atol=1e-6))
        ):
            raise ValueError(
                f"the data's grid ({lat_dim}: {lat.size}, {lon_dim}: {lon.size}) is not the regridder's "
                f"source grid {src!r} (other coordinates or order)"
            )
        return [lat_dim, lon_dim]
    if vertex_name not in obj.dims:
        raise ValueError(f"no {vertex_name!r} dimension among {tuple(obj.dims)} (pass vertex_name=)")
    if obj.sizes[vertex_name] != regridder.src_shape[0]:
        raise ValueError(
            f"the {vertex_name!r} dimension has {obj.sizes[vertex_name]} values but the mesh has "
            f"{regridder.src_shape[0]} vertices"
        )
    return [vertex_name]


def _new_coords(regridder: Any, out_dims: list[str]) -> dict[str, Any]:
    dst = regridder.dst
    if isinstance(dst, LatLonGrid):
        return {
            out_dims[0]: (out_dims[0], dst.lat, _coordinate_attrs("lat")),
            out_dims[1]: (out_dims[1], dst.lon, _coordinate_attrs("lon")),
        }
    lat, lon = (dst.lat, dst.lon) if not hasattr(dst, "mesh") else (np.rad2deg(dst.mesh.lat), np.rad2deg(dst.mesh.lon))
    return {"lat": (out_dims[0], lat, _coordinate_attrs("lat")), "lon": (out_dims[0], lon, _coordinate_attrs("lon"))}


def _regrid_dataarray(
    regridder: Any, da: Any, in_dims: list[str], out_dims: list[str], skipna: bool, na_thres: float
) -> Any:
    """One DataArray with the grid dimensions ``in_dims``: the grid coordinates dropped, regridded, relabelled."""
    xr = _import_xarray()
    from .regridder import _is_dask

    new_names = set(out_dims) | ({"lat", "lon"} if len(out_dims) == 1 else set())
    drop = [name for name, coord in da.coords.items() if set(coord.dims) & set(in_dims) or name in new_names]
    da = da.drop_vars(drop)
    lazy = _is_dask(da.data)
    if lazy:
        da = da.chunk({dim: -1 for dim in in_dims})
    out = xr.apply_ufunc(
        regridder.regrid_numpy,
        da,
        input_core_dims=[in_dims],
        output_core_dims=[out_dims],
        exclude_dims=set(in_dims),
        dask="parallelized" if lazy else "forbidden",
        kwargs={"skipna": skipna, "na_thres": na_thres},
        output_dtypes=[regridder.output_dtype(da.dtype)],
        dask_gufunc_kwargs={"output_sizes": dict(zip(out_dims, regridder.dst_shape))},
        keep_attrs=True,
    )
    out = out.assign_coords(_new_coords(regridder, out_dims))
    out.attrs = _out_attrs(da.attrs, regridder)
    return out


def regrid_xarray(
    regridder: Any,
    obj: Any,
    *,
    skipna: bool,
    na_thres: float,
    lat_name: str | None = None,
    lon_name: str | None = None,
    vertex_name: str = "vertex",
) -> Any:
    """What :class:`~meshcnn.grids.Regridder` does with an ``xarray.DataArray`` or ``Dataset`` (see its call).

    A ``Dataset`` gives a ``Dataset``: variables with every grid dimension are regridded, variables and
    coordinates with none are kept, the rest (bounds such as ``lat_bnds``) dropped.

    Raises
    ------
    TypeError
        If ``obj`` is neither a DataArray nor a Dataset.
    ValueError
        If its grid is not the regridder's source grid, or a grid dimension is missing.
    """
    xr = _import_xarray()
    if not isinstance(obj, (xr.DataArray, xr.Dataset)):
        raise TypeError(f"expected an xarray DataArray or Dataset, got {type(obj).__name__}")
    in_dims = _in_dims(regridder, obj, lat_name, lon_name, vertex_name)
    out_dims = [lat_name or "lat", lon_name or "lon"] if isinstance(regridder.dst, LatLonGrid) else [vertex_name]
    if isinstance(regridder.src, LatLonGrid) and isinstance(regridder.dst, LatLonGrid):
        out_dims = list(in_dims)  # lat-lon to lat-lon: the same dimension names
    if isinstance(obj, xr.DataArray):
        return _regrid_dataarray(regridder, obj, in_dims, out_dims, skipna, na_thres)
    out = {}
    for name, var in obj.data_vars.items():
        on_grid = [dim in var.dims for dim in in_dims]
        if all(on_grid):
            out[name] = _regrid_dataarray(regridder, var, in_dims, out_dims, skipna, na_thres)
        elif not any(on_grid):
            out[name] = var
    coords = {
        name: coord
        for name, coord in obj.coords.items()
        if not set(coord.dims) & set(in_dims) and name not in ("lat", "lon") and name not in out_dims
    }
    ds = xr.Dataset(out, coords=coords, attrs=_out_attrs(obj.attrs, regridder))
    return ds


def regrid_dataarray(
    obj: Any,
    level: int | Mesh | Any,
    method: str = "bilinear",
    *,
    lat_name: str | None = None,
    lon_name: str | None = None,
    skipna: bool = False,
    na_thres: float = 0.5,
    na_thresh: float | None = None,
) -> Any:
    """Regrid an ``xarray.DataArray`` or ``Dataset`` on a lat-lon grid to the icosphere of ``level`` (or a mesh).

    A :class:`~meshcnn.grids.Regridder` from the object's lat-lon grid to ``level``, called on it.
    The latitude/longitude dimensions (given, found by CF attributes, or ``lat``/``lon``,
    ``latitude``/``longitude``) must carry 1-D coordinates in degrees. They are replaced
    by a ``vertex`` dimension of length ``V`` (in the mesh's vertex order: a HEALPix grid's
    pixel order), with coordinates ``lat`` and ``lon`` (degrees, lon in ``(-180, 180]``) of
    each vertex; the other dimensions and their coordinates are kept. A ``Dataset`` gives a
    ``Dataset``: variables with both grid dimensions are regridded, variables with neither are
    kept, the rest (such as ``lat_bnds``) dropped. The attributes ``regrid_method`` and
    ``mesh_level`` (an icosphere) or ``mesh_name`` and ``mesh_fingerprint`` (another mesh) are added.
    A Dask-backed object stays lazy.

    ``skipna=True`` regrids fields with missing values (NaN, e.g. a land-masked
    sea-surface temperature) from their valid points only; vertices where more than ``na_thres``
    of the weight is missing are NaN (xESMF's meaning; :mod:`meshcnn.grids.regridder`).

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
    level : int, Mesh or grid with a ``mesh``
        Icosphere level, or any mesh or grid (:func:`~meshcnn.grids.latlon_to_mesh`).
    method : one of :data:`~meshcnn.grids.METHODS`
        Default ``"bilinear"``.
    lat_name, lon_name : str, optional
        The grid dimensions; default: found by CF attributes or among the usual names.
    skipna : bool
        Regrid from the valid points only (default ``False``).
    na_thres : float
        Largest missing weight fraction for a non-NaN output (default 0.5).
    na_thresh : float, optional
        Deprecated: the smallest *valid* fraction, ``1 - na_thres`` (a ``DeprecationWarning``).

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
    from .regridder import Regridder, _as_grid

    xr = _import_xarray()
    na_thres = check_na_thres(na_thres, na_thresh)
    target = _as_grid(level)
    _check_method(method)
    if not isinstance(obj, (xr.DataArray, xr.Dataset)):
        raise TypeError(f"expected an xarray DataArray or Dataset, got {type(obj).__name__}")
    lat_dim, lon_dim = latlon_dims(obj, lat_name, lon_name)
    grid = latlon_grid(
        np.asarray(obj[lat_dim].values, dtype=np.float64), np.asarray(obj[lon_dim].values, dtype=np.float64)
    )
    regridder = Regridder(grid, target, method, skipna=skipna, na_thres=na_thres)
    return regridder(obj, lat_name=lat_dim, lon_name=lon_dim)


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
    na_thres: float = 0.5,
    mesh: int | Mesh | Any | None = None,
    na_thresh: float | None = None,
) -> Any:
    """The inverse direction of :func:`regrid_dataarray`: an ``xarray.DataArray`` (or ``Dataset``) on a mesh
    (a ``vertex`` dimension of length ``V``) to the lat-lon grid ``(lat, lon)``.

    A :class:`~meshcnn.grids.Regridder` from the mesh to ``LatLonGrid(lat, lon)``, called on it.
    The mesh is ``mesh`` if given (a level, a Mesh or a grid such as
    :class:`~meshcnn.grids.HealpixGrid`, with ``V`` vertices), else the icosphere level found
    from ``V``. ``vertex`` is replaced by the dimensions ``lat_name``,
    ``lon_name`` with the given coordinates (degrees, in the given order); the other
    dimensions, their coordinates and the attributes are kept (``mesh_level``, or ``mesh_name`` and
    ``mesh_fingerprint``, and ``regrid_method`` are updated). ``skipna``/``na_thres`` as in
    :func:`regrid_dataarray`. A Dask-backed object stays lazy.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
    lat, lon : array_like
        Target coordinates, degrees.
    method : one of :data:`~meshcnn.grids.METHODS`
        Default ``"bilinear"``.
    vertex_name : str
        The mesh dimension (default ``"vertex"``).
    lat_name, lon_name : str
        The new dimensions (default ``"lat"``, ``"lon"``).
    skipna : bool
    na_thres : float
    mesh : int, Mesh or grid with a ``mesh``, optional
        The mesh the data are on; default: the icosphere level with ``V`` vertices.
    na_thresh : float, optional
        Deprecated (see :func:`regrid_dataarray`).

    Returns
    -------
    xarray.DataArray or xarray.Dataset

    Raises
    ------
    TypeError
        If ``obj`` is not a DataArray or Dataset.
    ValueError
        If it has no ``vertex_name`` dimension, or its length is not that of ``mesh`` or (without
        ``mesh``) of an icosphere level.
    """
    from .regridder import Regridder, _as_grid

    xr = _import_xarray()
    na_thres = check_na_thres(na_thres, na_thresh)
    _check_method(method)
    if not isinstance(obj, (xr.DataArray, xr.Dataset)):
        raise TypeError(f"expected an xarray DataArray or Dataset, got {type(obj).__name__}")
    if vertex_name not in obj.dims:
        raise ValueError(f"no {vertex_name!r} dimension among {tuple(obj.dims)}")
    size = obj.sizes[vertex_name]
    if mesh is None:
        mesh = level_of(size)
        if mesh is None:
            raise ValueError(f"{size} vertices is not an icosphere level; give the mesh or grid as mesh=")
    source = _as_grid(mesh)
    grid = latlon_grid(np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64))
    regridder = Regridder(source, grid, method, skipna=skipna, na_thres=na_thres)
    return regridder(obj, vertex_name=vertex_name, lat_name=lat_name, lon_name=lon_name)
