"""Climate segmentation data: the ClimateNet / UGSCNN reader (:mod:`.reader`) and the
synthetic generator (:mod:`.synth`). Command line: ``python -m meshcnn.data.climate``.
"""
from .reader import (
    VARIABLES, NORTHWARD_VARIABLES, CLASSES, NUM_CLASSES, UNITS, ClimateFileError, read_latlon, read_climatenet,
    read_ugscnn, read_split_list, write_split_lists, split_files, find_files, ClimateNetDataset, compute_stats,
    class_weights, LatLonGrid, synth_listed_files)
from .synth import (
    synthesize_sample, write_climatenet, default_grid, generate_synthetic, remove_synthetic, verify_synthetic)

__all__ = [
    "VARIABLES", "NORTHWARD_VARIABLES", "CLASSES", "NUM_CLASSES", "UNITS", "ClimateFileError", "read_latlon",
    "read_climatenet", "read_ugscnn", "read_split_list", "write_split_lists", "split_files", "find_files",
    "ClimateNetDataset", "compute_stats", "class_weights", "LatLonGrid", "synth_listed_files", "synthesize_sample",
    "write_climatenet", "default_grid", "generate_synthetic", "remove_synthetic", "verify_synthetic",
]
