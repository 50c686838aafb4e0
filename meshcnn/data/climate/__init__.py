"""Climate segmentation data (ClimateNet / UGSCNN).

:mod:`._format` the file format (variables, classes, the legacy checksum trailer); :mod:`.reader`
reading and regridding one file; :mod:`.files` sample files and splits; :mod:`.dataset`
the lazy dataset and its statistics; :mod:`.synth` the synthetic generator (one sample:
:mod:`.sample`, built from :mod:`.weather` and :mod:`.storms`; checks: :mod:`.verify`);
:mod:`.cli` the command line, ``python -m meshcnn.data.climate``.
"""

from ...grids import LatLonGrid
from . import cli  # noqa: F401 - the `meshcnn data` command's module, reached as meshcnn.data.climate.cli
from ._format import (
    CLASSES,
    NORTHWARD_VARIABLES,
    NUM_CLASSES,
    UNITS,
    VARIABLES,
    ClimateFileError,
    verify_checksum_trailer,
)
from .dataset import ClimateNetDataset, LazyClimateDataset, class_weights, compute_stats
from .files import find_files, read_split_list, split_files, synth_listed_files, write_split_lists
from .reader import read_climatenet, read_latlon, read_ugscnn, regrid_sample, write_ugscnn
from .synth import (
    default_grid,
    ensure_synthetic,
    generate_synthetic,
    remove_synthetic,
    synthesize_sample,
    verify_synthetic,
    write_climatenet,
)

__all__ = [
    "VARIABLES",
    "NORTHWARD_VARIABLES",
    "CLASSES",
    "NUM_CLASSES",
    "UNITS",
    "ClimateFileError",
    "verify_checksum_trailer",
    "LazyClimateDataset",
    "read_latlon",
    "read_climatenet",
    "read_ugscnn",
    "read_split_list",
    "write_split_lists",
    "split_files",
    "find_files",
    "ClimateNetDataset",
    "compute_stats",
    "class_weights",
    "LatLonGrid",
    "synth_listed_files",
    "synthesize_sample",
    "write_climatenet",
    "default_grid",
    "generate_synthetic",
    "remove_synthetic",
    "verify_synthetic",
    "regrid_sample",
    "write_ugscnn",
    "ensure_synthetic",
]
