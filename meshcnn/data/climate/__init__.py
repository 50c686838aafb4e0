"""Climate segmentation data (ClimateNet / UGSCNN).

:mod:`._format` the file format (variables, classes, the legacy checksum trailer); :mod:`.reader`
reading and regridding one file; :mod:`.files` sample files and splits; :mod:`.dataset`
the lazy dataset and its statistics; :mod:`.synth` the synthetic generator (one sample:
:mod:`.sample`, built from :mod:`.weather` and :mod:`.storms`; checks: :mod:`.verify`);
:mod:`.cli` the command line, ``python -m meshcnn.data.climate``.
"""

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
from .files import find_files, split_files
from .reader import read_climatenet, read_latlon
from .synth import ensure_synthetic, generate_synthetic, verify_synthetic, write_climatenet

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
    "split_files",
    "find_files",
    "ClimateNetDataset",
    "compute_stats",
    "class_weights",
    "write_climatenet",
    "generate_synthetic",
    "verify_synthetic",
    "ensure_synthetic",
]
