"""``python -m meshcnn.data.shapes``: see :mod:`meshcnn.data.shapes.cli`."""

from .cli import main

if __name__ == "__main__":
    main()
