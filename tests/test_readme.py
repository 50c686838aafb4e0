"""The README's example runs, and CI runs exactly the README's test command."""

import __future__

import importlib
import re
import types
from pathlib import Path

from _helpers import meshcnn_module_names

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _run_example(index: int) -> dict:
    """Run the README's ``index``-th Python block; its namespace."""
    example = re.findall(r"```python\n(.*?)```", README, re.S)[index]
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    return namespace


def test_usage_example_runs():
    assert tuple(_run_example(0)["logits"].shape) == (8, 3, 10242)


def test_any_grid_example_runs(tmp_path, monkeypatch):
    """The "Any spherical grid" block, as a user pastes it (it writes a grid file into the working folder)."""
    monkeypatch.chdir(tmp_path)
    namespace = _run_example(1)
    assert tuple(namespace["x"].shape) == (2, 16, 5000)
    assert tuple(namespace["down"](namespace["x"]).shape) == (2, 32, 2562)  # stations -> icosphere level 4
    assert (tmp_path / "icon_like.nc").exists()


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    test_command = next(c for c in commands if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == test_command


# ---------------------------------------------------------------------------- the public API
def _readme_api_table() -> dict[str, set[str]]:
    """The README's "Public names" table: ``{package: {names}}``."""
    section = README.split("### Public names", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `(meshcnn[\w.]*)` \| (.*?) \|$", section, re.M)
    assert rows, "no '| `package` | `name`, ... |' rows under '### Public names'"
    return {package: set(re.findall(r"`([\w.]+)`", names)) for package, names in rows}


def test_readme_lists_exactly_the_exported_names():
    """A package's ``__all__`` is its public face; the README lists every name of it, and nothing else."""

    table = _readme_api_table()
    assert set(table) == set(meshcnn_module_names(packages_only=True)), "the README table must have one row per package"
    for package, listed in table.items():
        exported = set(getattr(importlib.import_module(package), "__all__", ()))
        assert listed == exported, (
            f"{package}: exported but not in the README: {sorted(exported - listed)}; "
            f"in the README but not exported: {sorted(listed - exported)}"
        )


def test_packages_expose_no_public_name_outside_all():
    """A name imported into a package's ``__init__`` is public only through ``__all__``: no stray re-exports."""

    for package in meshcnn_module_names(packages_only=True):
        module = importlib.import_module(package)
        exported = set(getattr(module, "__all__", ()))
        stray = {
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and not isinstance(value, types.ModuleType | __future__._Feature)
            and name not in exported
        }
        assert not stray, f"{package} exposes {sorted(stray)} without listing them in __all__"
