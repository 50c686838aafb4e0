"""``python -m meshcnn.geometry --levels 0-7 --out meshes/``: write icosphere mesh files."""

from .mesh import main

main()
