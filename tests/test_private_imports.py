"""No package of meshcnn reaches into another's private names (issue 19): what two packages share is public, with
a docstring (e.g. :func:`meshcnn.io.array_checksum`, :func:`meshcnn.data.climate.verify_checksum_trailer`,
:func:`meshcnn.grids.latlon_dims`); the private modules of the root package (``meshcnn._optional``,
``meshcnn._cache``, ``meshcnn._progress``) are the shared internals of all of them."""

from __future__ import annotations

import ast
from pathlib import Path

import meshcnn

ROOT = Path(meshcnn.__file__).parent

#: Private modules of a package that another package still imports from, with the reason.
ALLOWED_MODULES: dict[str, str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """``(target module, imported names, line)`` of every ``from ... import ...`` of meshcnn in ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        if target == "meshcnn" or target.startswith("meshcnn."):
            yield target, [a.name for a in node.names], node.lineno


def _subpackage(module: str) -> str:
    """``meshcnn.<first component>``: the unit that owns its private names."""
    return ".".join(module.split(".")[:2])


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_name_is_imported_across_packages():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        importer = _module_name(path)
        for target, names, line in _imports(path):
            if _subpackage(target) == _subpackage(importer) or _private(target.split(".")[1] if "." in target else ""):
                continue  # inside one package, or the root package's shared private modules
            where = f"{path.relative_to(ROOT.parent)}:{line}"
            found += [f"{where}: {target}.{n}" for n in names if _private(n)]
            private_module = [p for p in target.split(".")[2:] if _private(p)]
            if private_module and target not in ALLOWED_MODULES:
                found.append(f"{where}: private module {target}")
    assert not found, "private names imported across packages:\n" + "\n".join(found)


def test_the_shared_helpers_are_public():
    from meshcnn.data.climate import LazyClimateDataset, verify_checksum_trailer
    from meshcnn.data.climate.dataset import LazyClimateDataset as defined
    from meshcnn.grids import latlon_dims
    from meshcnn.io import array_checksum

    assert LazyClimateDataset is defined
    for f in (verify_checksum_trailer, latlon_dims, array_checksum):
        assert f.__doc__ and "Parameters" in f.__doc__
