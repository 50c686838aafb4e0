"""Datasets and their readers: one submodule per kind of data.

- :mod:`meshcnn.data.climate` -- ClimateNet netCDF files and UGSCNN ``.npz`` samples
- :mod:`meshcnn.data.shapes` -- ModelNet-layout OFF shapes projected onto the sphere
- :mod:`meshcnn.data.digits` -- planar digit images projected onto the sphere

Submodules are not imported here, so that each one's optional dependencies
(xarray/netCDF4, trimesh ray engines, scikit-learn) load only when it is used.
"""
