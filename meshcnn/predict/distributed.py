"""``meshcnn predict --dask``: the chunks of the input files on a ``dask.distributed`` cluster.

How it is scheduled
-------------------
The unit of work is a file (its chunks of ``--batch-size`` steps in order, as in the serial
run) when there are at least as many files as workers, so that each file is read, and its
compressed HDF5 chunks decompressed, by one worker only; with fewer files than workers it is
one chunk, so that a long file is spread over the workers. The process that calls
:func:`meshcnn.predict.predict_files` plans the run (which outputs are complete, with
``--resume``; each file's header) and submits the tasks, keeping at most
:data:`IN_FLIGHT_PER_WORKER` per worker in flight so that finished ones do not pile up in
memory. A task (:func:`predict_chunks`, :func:`predict_chunk` per chunk) runs the stages
*read*, *regrid*, *model*, *regrid back* and the events on a worker and returns the labels
(and probabilities) on the file's grid, the mesh labels and the events. Each worker process
loads the model once (kept per checkpoint, SHA-256 and device; all workers at once before the first task, with the
regridders of the first file's grid, :func:`prepare_worker`) and keeps the file of its last
chunk open for the file's next chunk. The calling process takes the results in file and time
order and writes the outputs exactly as the serial run does (one temporary file per output,
renamed into place when complete), so the outputs are the same files, resume works as before, and a killed run
leaves no partial output.

Use a local cluster (``meshcnn predict --dask --workers N``), an existing one (``--scheduler
ADDRESS``), or, from Python, any ``distributed.Client``::

    from distributed import Client
    predict_files(files, "run/checkpoint.pt", "out", client=Client("tcp://scheduler:8786"))

The workers need meshcnn and read the input files, and the checkpoint, by the same paths.
Dask and distributed are the optional extra ``meshcnn[dask]``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .._optional import optional_import
from .predictor import PredictError, Predictor, load_predictor

__all__ = ["predict_chunk", "predict_chunks", "prepare_worker", "chunk_results", "local_client", "IN_FLIGHT_PER_WORKER"]

#: Chunks submitted per worker ahead of the one being written.
IN_FLIGHT_PER_WORKER = 2

_WORKER: dict[str, Any] = {"predictors": {}, "dataset": None}


def import_distributed() -> Any:
    """``distributed``, or an ``ImportError`` naming the extra ``meshcnn[dask]``."""
    return optional_import("distributed", "meshcnn predict --dask needs dask.distributed", "dask")


def local_client(workers: int, threads: int = 1) -> Any:
    """A ``distributed.Client`` of a new local cluster (closed with the client): ``workers`` processes of one
    thread each.

    Parameters
    ----------
    workers : int
        Worker processes (at least 1).
    threads : int
        Unused by Dask (one task at a time per worker); the torch threads of each worker are set
        per task (:func:`predict_chunk`).
    """
    distributed = import_distributed()
    if workers < 1:
        raise PredictError(f"--workers must be >= 1, got {workers}")
    return distributed.Client(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")


def _worker_predictor(checkpoint: str, sha256: str, device: str, threads: int) -> Predictor:
    """The model of this worker process for ``checkpoint`` (loaded once, checked against ``sha256``)."""
    import torch

    key = (checkpoint, sha256, device)
    predictor = _WORKER["predictors"].get(key)
    if predictor is None:
        if threads > 0:
            torch.set_num_threads(threads)
        predictor = load_predictor(checkpoint, device)
        if predictor.sha256 != sha256:
            raise PredictError(
                f"{checkpoint}: the checkpoint changed during the run (SHA-256 {predictor.sha256}, "
                f"the run started with {sha256})"
            )
        _WORKER["predictors"][key] = predictor
    return predictor


def prepare_worker(checkpoint: str, sha256: str, path: str, *, device: str, threads: int) -> None:
    """Load the model on this worker and build the regridders of ``path``'s grid (run on every worker first)."""
    from .stages import prebuild_matrices

    predictor = _worker_predictor(checkpoint, sha256, device, threads)
    prebuild_matrices([Path(path)], predictor.grid)


def predict_chunk(
    checkpoint: str,
    sha256: str,
    path: str,
    t0: int,
    t1: int,
    *,
    device: str,
    threads: int,
    batch_size: int,
    probabilities: bool,
    allow_nan: bool,
    max_nan_fraction: float,
) -> dict[str, Any]:
    """One chunk on a worker: steps ``[t0, t1)`` of ``path`` read, regridded, predicted, regridded back, events found.

    Returns
    -------
    dict
        The item of :class:`~meshcnn.predict.stages.ChunkDataset` (without its tensor ``x`` and ``raw``
        fields) plus ``labels``, ``grid_probs`` (or ``None``), ``mesh_labels``, ``events`` and
        ``seconds`` (per stage); or ``{"file", "t0", "t1", "error"}`` for a chunk of a bad file.
    """
    from .runner import STAGES, _predict_chunk
    from .stages import ChunkDataset, chunk_events

    predictor = _worker_predictor(checkpoint, sha256, device, threads)
    dataset = _WORKER["dataset"]
    if (
        dataset is None
        or dataset.files[0] != Path(path)
        or dataset.grid is not predictor.grid
        or dataset.allow_nan != allow_nan
        or dataset.max_nan_fraction != max_nan_fraction
    ):
        if dataset is not None:
            dataset.close()
        dataset = ChunkDataset([Path(path)], [], predictor, allow_nan, max_nan_fraction)
        _WORKER["dataset"] = dataset
    dataset.chunks.append((0, t0, t1))
    item = dataset[len(dataset.chunks) - 1]
    if "error" in item:
        return item
    seconds = dict.fromkeys(STAGES, 0.0)
    labels, grid_probs, mesh_labels = _predict_chunk(
        item, predictor, seconds, batch_size=batch_size, device=device, probabilities=probabilities
    )
    start = time.perf_counter()
    events = chunk_events(mesh_labels, predictor.grid.mesh, predictor.class_names, item.pop("raw"), item["t0"])
    seconds["write"] += time.perf_counter() - start
    del item["x"]
    item.update(labels=labels, grid_probs=grid_probs, mesh_labels=mesh_labels, events=events, seconds=seconds)
    return item


def predict_chunks(
    checkpoint: str, sha256: str, path: str, steps: list[tuple[int, int]], **options: Any
) -> list[dict[str, Any]]:
    """:func:`predict_chunk` for each ``(t0, t1)`` of ``steps`` of one file, in order, on one worker (one task):
    the file is opened, and its HDF5 chunks decompressed, once."""
    return [predict_chunk(checkpoint, sha256, path, t0, t1, **options) for t0, t1 in steps]


def _tasks(chunks: Sequence[tuple[int, int, int]], workers: int) -> list[list[tuple[int, int, int]]]:
    """The chunks grouped into tasks: one task per file when there are at least as many files as workers
    (a file is read by one worker), else one per chunk (a long file spread over the workers)."""
    by_file: dict[int, list[tuple[int, int, int]]] = {}
    for chunk in chunks:
        by_file.setdefault(chunk[0], []).append(chunk)
    if len(by_file) >= workers:
        return list(by_file.values())
    return [[chunk] for chunk in chunks]


def chunk_results(
    client: Any, files: Sequence[Path], chunks: Sequence[tuple[int, int, int]], predictor: Predictor, **options: Any
) -> Iterator[dict[str, Any]]:
    """The results of :func:`predict_chunk` for ``chunks`` (``(file index, t0, t1)``), in their order.

    With at least as many files as workers, a task is a whole file (:func:`predict_chunks`); with fewer,
    a chunk. At most :data:`IN_FLIGHT_PER_WORKER` tasks per worker are submitted ahead of the one taken.

    Parameters
    ----------
    client : distributed.Client
    files : sequence of Path
    chunks : sequence of tuple of int
    predictor : Predictor
        The model of this run (its checkpoint path and SHA-256 go to the workers).
    **options
        ``device``, ``threads``, ``batch_size``, ``probabilities``, ``allow_nan``, ``max_nan_fraction``.
    """
    workers = max(len(client.scheduler_info().get("workers", {})), 1)
    limit = IN_FLIGHT_PER_WORKER * workers
    pending: deque[Any] = deque()
    todo = iter(_tasks(chunks, workers))
    checkpoint = str(Path(predictor.checkpoint).resolve())
    if chunks:  # every worker loads the model and builds the first file's regridders now, all at once
        first = str(Path(files[chunks[0][0]]).resolve())
        client.run(
            prepare_worker, checkpoint, predictor.sha256, first, device=options["device"], threads=options["threads"]
        )

    def submit() -> bool:
        task = next(todo, None)
        if task is None:
            return False
        file_index = task[0][0]
        future = client.submit(
            predict_chunks,
            checkpoint,
            predictor.sha256,
            str(Path(files[file_index]).resolve()),
            [(t0, t1) for _, t0, t1 in task],
            pure=False,
            **options,
        )
        pending.append((file_index, future))
        return True

    while len(pending) < limit and submit():
        pass
    try:
        while pending:
            file_index, future = pending.popleft()
            results = future.result()
            submit()
            for result in results:
                result["file"] = file_index
                yield result
    finally:
        for _, future in pending:
            future.cancel()
