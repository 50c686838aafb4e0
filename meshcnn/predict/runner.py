r"""Segment new climate model output with a trained checkpoint: ``meshcnn predict``.

With a ``dask.distributed`` client the chunks run on the cluster's workers instead
(:mod:`.distributed`); everything else, the writing included, is the same.

:func:`predict_files` runs the pipeline of :mod:`.stages` over the files, one
:class:`torch.utils.data.DataLoader` item per file, or per chunk of ``batch_size``
time steps of a long file, so memory stays flat in the number of files and in their
length. The *read* and *regrid* stages run in the loader's workers; *model*,
*regrid back* and *write* (with the events) in this process, which writes one
netCDF per input, same name, in ``out`` (:mod:`.output`), and optionally one events
CSV for all of them plus the per-vertex event counts beside it.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from .._progress import progress_bar
from ..data.climate import ClimateFileError
from ..io import atomic_write, remove_stale_temporaries
from ..tasks.segmentation import mesh_probabilities
from .events import EVENT_COLUMNS, frequency_path, save_frequency
from .inputs import find_inputs, output_name, read_fields, time_strings
from .output import OutputWriter, events_csv_row, output_complete, read_complete
from .predictor import PredictError, Predictor, load_predictor
from .stages import (
    MAX_NAN_FRACTION,
    ChunkDataset,
    chunk_events,
    grid_labels,
    identity,
    prebuild_matrices,
)

__all__ = ["predict_files", "STAGES"]

log = logging.getLogger(__name__)

#: The timed stages, in pipeline order.
STAGES = ("read", "regrid", "model", "regrid_back", "write")


class _Tally:
    """What a run has done: the result counts, per-vertex event counts and the events CSV rows."""

    def __init__(
        self, num_files: int, skipped_complete: int, predictor: Predictor, skip_bad: bool, say: Callable[[str], Any]
    ) -> None:
        self.mesh = predictor.grid.mesh
        self.counts = np.zeros((len(predictor.class_names), self.mesh.num_vertices), dtype=np.int64)
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.result: dict[str, Any] = {
            "files": num_files,
            "written": 0,
            "skipped_complete": skipped_complete,
            "bad": [],
            "events": 0,
            "time_steps": 0,
        }
        self.writer: Any = None
        self.skip_bad, self.say = skip_bad, say

    def write_events_to(self, csv_file: Any) -> None:
        """Write the CSV header to the open text file ``csv_file``, and each recorded file's events after it."""
        self.writer = csv.writer(csv_file)
        self.writer.writerow(EVENT_COLUMNS)

    def record(
        self, source: Path, mesh_labels: np.ndarray, file_events: list[dict[str, Any]], times: list[str]
    ) -> None:
        """Count a file's time steps, events and per-vertex classes; write its events' CSV rows.

        Parameters
        ----------
        source : Path
            The input file (its name goes into the CSV rows).
        mesh_labels : (T, V) array
            Predicted class per time step and vertex.
        file_events : list of dict
            The file's events.
        times : list of str
            The file's time steps as text, indexed by an event's ``time_index``.
        """
        self.result["time_steps"] += mesh_labels.shape[0]
        self.result["events"] += len(file_events)
        for t in range(mesh_labels.shape[0]):
            self.counts[mesh_labels[t].astype(np.int64), np.arange(self.mesh.num_vertices)] += 1
        if self.writer is not None:
            for e in file_events:
                self.writer.writerow(events_csv_row(source.name, e, times[e["time_index"]]))

    def bad(self, source: Path, message: str) -> None:
        """A file that cannot be used: stop, or (``skip_bad``) log and count it.

        Parameters
        ----------
        source : Path
            The file.
        message : str
            Why it cannot be used.

        Raises
        ------
        PredictError
            With ``message``, unless ``skip_bad``.
        """
        if not self.skip_bad:
            raise PredictError(message)
        self.result["bad"].append((str(source), message))
        self.say(f"skipping bad file: {message}")


def _check_destinations(
    out: Path, events: str | os.PathLike | None, batch_size: int, num_workers: int, max_nan_fraction: float
) -> None:
    """Refuse bad sizes, an output folder that is a file and an events CSV that is a folder."""
    if batch_size < 1 or num_workers < 0:
        raise PredictError("--batch-size must be >= 1 and --num-workers >= 0")
    if not 0.0 <= max_nan_fraction <= 1.0:
        raise PredictError(f"--max-nan-fraction must be within [0, 1], got {max_nan_fraction}")
    if out.exists() and not out.is_dir():
        raise PredictError(f"--out {out}: exists and is a file, not a folder")
    if events is not None and Path(events).is_dir():
        raise PredictError(f"--events {events}: is a folder; give a CSV file name")


def _identity(path: Path) -> tuple[str, tuple[int, int] | None]:
    """``path`` with every symlink and ``..`` resolved, and its ``(device, inode)`` when it exists."""
    try:
        st = os.stat(path)
        inode = (st.st_dev, st.st_ino)
    except OSError:
        inode = None
    return os.path.realpath(path), inode


def _refuse_overwriting_inputs(files: Sequence[Path], out: Path, events: str | os.PathLike | None) -> None:
    """Refuse, before anything is written, any output that is one of the input files.

    An output path is an input when both resolve to the same real path (symlinks, ``..``)
    or are the same existing file (same device and inode: hard links, and names that
    differ only in case on a case-insensitive file system). The outputs are
    ``out/<name>`` per input, and the events CSV and its ``.frequency.npz``.

    Raises
    ------
    PredictError
        Naming the output and the input it would overwrite.
    """
    real, inodes = {}, {}
    for f in files:
        path, inode = _identity(f)
        real.setdefault(path, f)
        if inode is not None:
            inodes.setdefault(inode, f)

    def refuse(option: str, target: Path) -> None:
        path, inode = _identity(target)
        source = real.get(path) or (inodes.get(inode) if inode is not None else None)
        if source is not None:
            raise PredictError(
                f"{option}: the output {target} is the input file {source} (the same file"
                f"{'' if os.path.abspath(target) == os.path.abspath(source) else ' through a link'}); "
                "nothing was written: choose an output that is not an input"
            )

    for f in files:
        refuse(f"--out {out}", out / output_name(f))
    if events is not None:
        refuse("--events", Path(events))
        refuse("--events", frequency_path(events))


def _plan(
    files: Sequence[Path], out: Path, predictor: Predictor, resume: bool, batch_size: int
) -> tuple[list[tuple[str, Any]], list[tuple[int, int, int]]]:
    """Per file ``("done", None)`` (complete, with ``resume``), ``("error", message)`` (bad header) or
    ``("predict", header)``; and the chunks ``(file index, t0, t1)`` of the files to predict."""
    plan: list[tuple[str, Any]] = []
    chunks: list[tuple[int, int, int]] = []
    for i, f in enumerate(files):
        if resume and output_complete(out / output_name(f), predictor.sha256):
            plan.append(("done", None))
            continue
        try:
            header = read_fields(f, predictor.variables, header_only=True)
        except ClimateFileError as exc:
            plan.append(("error", str(exc)))
            continue
        n = header["num_steps"]
        plan.append(("predict", header))
        chunks.extend((i, t0, min(t0 + batch_size, n)) for t0 in range(0, n, batch_size))
    return plan, chunks


def _predict_chunk(
    item: dict[str, Any],
    predictor: Predictor,
    seconds: dict[str, float],
    *,
    batch_size: int,
    device: str,
    probabilities: bool,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Model and regrid back of one loaded chunk, timed into ``seconds`` (with the chunk's read and regrid).

    Returns
    -------
    tuple
        ``labels (T, nlat, nlon)``, grid probabilities ``(T, K, nlat, nlon)`` or ``None``,
        and ``mesh_labels (T, V)``.
    """
    seconds["read"] += item["t_read"]
    seconds["regrid"] += item["t_regrid"]
    start = time.perf_counter()
    probs = mesh_probabilities(  # (T, K, V)
        predictor.model, item["x"], predictor.grid, device=device, batch_size=batch_size
    ).numpy()
    t_model = time.perf_counter()
    seconds["model"] += t_model - start
    mesh_labels = probs.argmax(1).astype(np.int8)
    labels, grid_probs = grid_labels(probs, predictor.grid, item["lat"], item["lon"], probabilities)
    seconds["regrid_back"] += time.perf_counter() - t_model
    return labels, grid_probs, mesh_labels


def _predict_file(
    items: Iterator[dict[str, Any]],
    source: Path,
    target: Path,
    header: dict[str, Any],
    predictor: Predictor,
    tally: _Tally,
    *,
    batch_size: int,
    device: str,
    probabilities: bool,
    max_nan_fraction: float | None,
) -> tuple[np.ndarray, list[dict[str, Any]]] | str:
    """Take the file's chunks from ``items`` and write its output.

    Returns
    -------
    tuple or str
        ``(mesh_labels (T, V), events)`` of the file, or the error of its first bad
        chunk (the remaining chunks are drained; nothing is written for the file).
    """
    output: OutputWriter | None = None
    all_mesh_labels = []
    try:
        for _ in range(0, header["num_steps"], batch_size):
            item = next(items)
            if "error" in item:
                for _ in range(item["t1"], header["num_steps"], batch_size):
                    next(items)  # drain the chunks of a bad file
                return item["error"]
            if "labels" in item:  # predicted on a Dask worker (meshcnn.predict.distributed), events found there
                labels, grid_probs, mesh_labels, events = (
                    item["labels"],
                    item["grid_probs"],
                    item["mesh_labels"],
                    item["events"],
                )
                for stage, seconds in item["seconds"].items():
                    tally.seconds[stage] += seconds
                start = time.perf_counter()
            else:
                labels, grid_probs, mesh_labels = _predict_chunk(
                    item, predictor, tally.seconds, batch_size=batch_size, device=device, probabilities=probabilities
                )
                start = time.perf_counter()  # the write stage, with finding the events
                events = chunk_events(mesh_labels, tally.mesh, predictor.class_names, item["raw"], item["t0"])
            if output is None:
                output = OutputWriter(
                    target, source, header, predictor, probabilities, max_nan_fraction=max_nan_fraction
                )
            output.write(item["t0"], labels, grid_probs, mesh_labels, events)
            output.record_missing(item["missing"], item["points"], item["filled"])
            all_mesh_labels.append(mesh_labels)
            tally.seconds["write"] += time.perf_counter() - start
        start = time.perf_counter()
        output.finish()
        tally.seconds["write"] += time.perf_counter() - start
        file_events, output = output.events, None
    finally:
        if output is not None:
            output.abort()
    return np.concatenate(all_mesh_labels), file_events


def predict_files(
    inputs: Sequence[str | os.PathLike],
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    *,
    events: str | os.PathLike | None = None,
    probabilities: bool = False,
    resume: bool = False,
    device: str = "cpu",
    batch_size: int = 4,
    num_workers: int = 0,
    allow_nan: bool = False,
    max_nan_fraction: float = MAX_NAN_FRACTION,
    skip_bad: bool = False,
    progress: bool = True,
    log_fn: Callable[[str], Any] | None = None,
    client: Any = None,
    worker_threads: int = 1,
) -> dict[str, Any]:
    """Segment every input file with a trained checkpoint (the library side of ``meshcnn predict``).

    Parameters
    ----------
    inputs : sequence of path-like
        netCDF files or folders (searched recursively for ``*.nc``).
    checkpoint : path-like
        ``RUN/checkpoint.pt`` (or the run folder).
    out : path-like
        Output folder (created); one file per input, same name (see :mod:`.output`).
    events : path-like, optional
        Path of an events CSV to write (one row per event, see
        :data:`meshcnn.predict.EVENT_COLUMNS`), plus ``<stem>.frequency.npz`` beside it
        (per-vertex event counts, for ``meshcnn events summary``).
    probabilities : bool
        Also write the class probabilities.
    resume : bool
        Skip inputs whose output is complete and from the same checkpoint.
    device : str
        Where the model runs.
    batch_size : int
        Time steps per DataLoader item and forward pass (a file with many time steps is
        read, regridded and written in chunks of this many, so memory does not grow
        with its length).
    num_workers : int
        DataLoader worker processes reading and regridding (0: in this process).
    allow_nan : bool
        Accept NaN/missing values in the fields (regridded from the valid points; mesh
        vertices without valid data get the training mean). The output records it:
        global attributes ``nan_variables``, ``nan_filled_fraction_<variable>`` and
        others (:mod:`.output`).
    max_nan_fraction : float
        With ``allow_nan``: the largest fraction of the globe, per variable and time step,
        that may be filled with the training mean; a variable missing on more makes the
        file bad (default :data:`meshcnn.predict.stages.MAX_NAN_FRACTION`).
    skip_bad : bool
        Log and skip inputs that cannot be used, instead of stopping.
    progress : bool
        tqdm bar over files.
    log_fn : callable, optional
        Where messages go (default: the module logger).
    client : distributed.Client, optional
        Run the chunks on this Dask cluster (:mod:`meshcnn.predict.distributed`: each worker loads
        the model once; this process writes the outputs, the same files as without it);
        ``num_workers`` is then unused.
    worker_threads : int
        With ``client``: torch threads of each Dask worker (0: torch's default).

    Returns
    -------
    dict
        ``{"files": n, "written": n, "skipped_complete": n, "bad": [(path, message)],
        "events": n, "time_steps": n, "seconds": {stage: s}, "wall_s": s,
        "files_per_s": x, "level": l, "checkpoint_sha256": hex}``.

    Raises
    ------
    PredictError
        Bad checkpoint, an output folder that is an existing file, an output (in ``out``,
        or ``events``) that is one of the input files (refused before anything is
        written), duplicate input file names, or (without ``skip_bad``) a bad input file,
        a variable missing on more than ``max_nan_fraction`` of the globe included; the
        message names the file. Outputs of the files before it are complete; nothing is
        written for it.
    """
    # over 60 lines only by its docstring (13 parameters); the steps are the functions above and below
    say = log_fn or log.info
    out = Path(out)
    _check_destinations(out, events, batch_size, num_workers, max_nan_fraction)
    files = find_inputs(inputs)
    _refuse_overwriting_inputs(files, out, events)
    predictor = load_predictor(checkpoint, device)
    out.mkdir(parents=True, exist_ok=True)
    for f in files:  # temporary files of a killed run
        remove_stale_temporaries(out / output_name(f))
    plan, chunks = _plan(files, out, predictor, resume, batch_size)
    done = sum(kind == "done" for kind, _ in plan)
    tally = _Tally(len(files), done, predictor, skip_bad, say)
    if done:
        say(f"resume: {done} of {len(files)} outputs complete, skipped")
    dataset = ChunkDataset(files, chunks, predictor, allow_nan, max_nan_fraction)
    wall0 = time.perf_counter()
    if client is not None:
        from .distributed import chunk_results

        items = chunk_results(
            client,
            files,
            chunks,
            predictor,
            device=device,
            threads=worker_threads,
            batch_size=batch_size,
            probabilities=probabilities,
            allow_nan=allow_nan,
            max_nan_fraction=max_nan_fraction,
        )
    else:
        prebuild_matrices([files[c[0]] for c in chunks[:1]], predictor.grid)
        loader = DataLoader(
            dataset,
            batch_size=None,
            shuffle=False,
            num_workers=num_workers,
            collate_fn=identity,
            persistent_workers=False,
            prefetch_factor=2 if num_workers > 0 else None,
        )
        items = iter(loader)
    with contextlib.ExitStack() as stack:
        stack.callback(dataset.close)  # the file open in this process (num_workers=0)
        if events is not None:  # renamed into place when every file is done
            tally.write_events_to(stack.enter_context(atomic_write(events, "w", newline="")))
        bar = stack.enter_context(progress_bar(enabled=progress, total=len(files), desc="predict", unit="file"))
        for source, (kind, info) in zip(files, plan):
            _run_file(
                kind,
                info,
                items,
                source,
                out / output_name(source),
                predictor,
                tally,
                batch_size=batch_size,
                device=device,
                probabilities=probabilities,
                max_nan_fraction=max_nan_fraction if allow_nan else None,
            )
            bar.update(1)
    if events is not None:
        save_frequency(
            frequency_path(events),
            tally.counts,
            tally.result["time_steps"],
            predictor.level,
            predictor.class_names,
            grid=predictor.config.get("grid", "icosphere"),
        )
    wall = time.perf_counter() - wall0
    tally.result.update(
        seconds=tally.seconds,
        wall_s=wall,
        files_per_s=(tally.result["written"] / wall) if wall > 0 else None,
        level=predictor.level,
        checkpoint_sha256=predictor.sha256,
    )
    return tally.result


def _run_file(
    kind: str,
    info: Any,
    items: Iterator[dict[str, Any]],
    source: Path,
    target: Path,
    predictor: Predictor,
    tally: _Tally,
    **options: Any,
) -> None:
    """One step of the plan: a complete output re-counted, a bad file reported, or a file predicted."""
    if kind == "done":
        tally.record(source, *read_complete(target))
    elif kind == "error":
        tally.bad(source, info)
    else:
        outcome = _predict_file(items, source, target, info, predictor, tally, **options)
        if isinstance(outcome, str):
            tally.bad(source, outcome)
            return
        mesh_labels, file_events = outcome
        tally.record(source, mesh_labels, file_events, time_strings(source, info["time_name"], info["num_steps"]))
        tally.result["written"] += 1
