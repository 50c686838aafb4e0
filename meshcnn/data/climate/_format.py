"""The ClimateNet file format: variables, classes, units, the legacy checksum trailer and the file error.

Shared by the reader (:mod:`.reader`), the dataset (:mod:`.dataset`) and the synthetic
generator (:mod:`.synth`), so that none of them imports another for these.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from ..._optional import optional_import

__all__ = [
    "VARIABLES",
    "NORTHWARD_VARIABLES",
    "CLASSES",
    "NUM_CLASSES",
    "UNITS",
    "ClimateFileError",
    "verify_checksum_trailer",
]

#: The 16 ClimateNet input fields, in channel order.
VARIABLES: tuple[str, ...] = (
    "TMQ",
    "U850",
    "V850",
    "UBOT",
    "VBOT",
    "QREFHT",
    "PS",
    "PSL",
    "T200",
    "T500",
    "PRECT",
    "TS",
    "TREFHT",
    "Z1000",
    "Z200",
    "ZBOT",
)
#: The northward (meridional) wind components among :data:`VARIABLES`: what
#: :func:`meshcnn.hemisphere_flip` turns into poleward components.
NORTHWARD_VARIABLES: tuple[str, ...] = ("V850", "VBOT")
#: Label values: index = value of ``LABELS``.
CLASSES: tuple[str, ...] = ("background", "tropical_cyclone", "atmospheric_river")
NUM_CLASSES = len(CLASSES)
#: CAM5 units and long names (written by the synthetic generator, shown in plots).
UNITS: dict[str, tuple[str, str]] = {
    "TMQ": ("kg/m2", "total (vertically integrated) precipitable water"),
    "U850": ("m/s", "zonal wind at 850 mbar pressure surface"),
    "V850": ("m/s", "meridional wind at 850 mbar pressure surface"),
    "UBOT": ("m/s", "lowest level zonal wind"),
    "VBOT": ("m/s", "lowest model level meridional wind"),
    "QREFHT": ("kg/kg", "reference height humidity"),
    "PS": ("Pa", "surface pressure"),
    "PSL": ("Pa", "sea level pressure"),
    "T200": ("K", "temperature at 200 mbar pressure surface"),
    "T500": ("K", "temperature at 500 mbar pressure surface"),
    "PRECT": ("m/s", "total (convective and large-scale) precipitation rate (liq + ice)"),
    "TS": ("K", "surface temperature (radiative)"),
    "TREFHT": ("K", "reference height temperature"),
    "Z1000": ("m", "geopotential Z at 1000 mbar pressure surface"),
    "Z200": ("m", "geopotential Z at 200 mbar pressure surface"),
    "ZBOT": ("m", "lowest model level height"),
}


class ClimateFileError(ValueError):
    """A data file that cannot be used; the message names the file (and variable)."""

    def __init__(self, path: str | os.PathLike, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)


def _netcdf4() -> Any:
    """The netCDF4 module, or an ImportError that names the optional extra."""
    return optional_import("netCDF4", "reading ClimateNet netCDF files needs netCDF4", "climate")


#: Files written by :func:`meshcnn.data.climate.write_climatenet` before issue 21 end with a trailer
#: ``b"\nmeshcnn-sha256:" + 64 hex digits + b"\n"`` after the HDF5 data: the SHA-256 of everything
#: before it. Such a file is not standard netCDF-4 (HDF5 refuses to open it for appending), so
#: files are now written without one and rely on the HDF5 Fletcher-32 checksum of every variable
#: (a damaged chunk fails to read) and on the readers' checks (a damaged chunk address reads as
#: fill values, which are refused as missing values). The readers still check the trailer of
#: older files before netCDF4/HDF5 parse them.
_CHECKSUM_TRAILER = re.compile(rb"\nmeshcnn-sha256:([0-9a-f]{64})\n\Z")
_TRAILER_SIZE = 81


def verify_checksum_trailer(path: Path, block: int = 1 << 22) -> bool:
    """Check the checksum trailer of a file that has one, reading it in blocks (memory stays flat).

    Files written by :func:`meshcnn.data.climate.write_climatenet` before issue 21 end with a
    SHA-256 trailer; the readers (:func:`meshcnn.data.climate.read_latlon`, ``meshcnn predict``)
    check it before netCDF4/HDF5 parse the file. A file without one passes.

    Parameters
    ----------
    path : Path
        The file.
    block : int
        Bytes read at a time.

    Returns
    -------
    bool
        Whether the file has a trailer (then it matched).

    Raises
    ------
    ClimateFileError
        The trailer does not match the file (altered since it was written), or the file
        cannot be read.
    """
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(size - _TRAILER_SIZE, 0))
            match = _CHECKSUM_TRAILER.search(f.read())
            if match is None:
                return False
            body, digest = size - _TRAILER_SIZE, hashlib.sha256()
            f.seek(0)
            while f.tell() < body:
                chunk = f.read(min(block, body - f.tell()))
                if not chunk:
                    break
                digest.update(chunk)
    except OSError as exc:
        raise ClimateFileError(path, f"unreadable file ({exc})") from exc
    if digest.hexdigest().encode() != match.group(1):
        raise ClimateFileError(path, "damaged file: its SHA-256 checksum does not match (altered since it was written)")
    return True


def _existing_file(path: str | os.PathLike, what: str = "ClimateNet file") -> Path:
    """``Path(path)`` if it is a file; ``FileNotFoundError`` if nothing is there, ``ClimateFileError`` for a folder."""
    path = Path(path)
    if path.is_dir():
        raise ClimateFileError(path, f"is a folder, not a {what}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what}")
    return path
