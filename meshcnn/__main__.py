"""The ``meshcnn`` command (also ``python -m meshcnn``).

    meshcnn predict --checkpoint RUN/checkpoint.pt --out OUTDIR [--events EVENTS.csv] [--probabilities]
                    [--resume] [--device cpu|cuda] [--threads N] [--batch-size N] [--num-workers N]
                    [--allow-nan [--max-nan-fraction F]] [--skip-bad] [--no-progress]
                    [--dask [--workers N | --scheduler ADDRESS]] FILES_OR_FOLDERS...
    meshcnn events summary EVENTS.csv --out DIR [--projection mollweide|equirectangular]
    meshcnn export CHECKPOINT OUT.safetensors

The work is done by :func:`meshcnn.predict.predict_files`, :func:`meshcnn.predict.summarize` and
:func:`meshcnn.tasks.export_safetensors`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from .cli import HELP_FORMATTER, apply_threads, run_options

#: Default of ``--max-nan-fraction`` (:data:`meshcnn.predict.stages.MAX_NAN_FRACTION`, repeated here so that
#: parsing the command line does not import the prediction pipeline; a test checks that they agree).
MAX_NAN_FRACTION = 0.05


def _predict_parser(sub: Any) -> None:
    """``meshcnn predict``; ``--device``, ``--threads``, ``--num-workers``, ``--resume`` and
    ``--no-progress`` come from :func:`meshcnn.cli.run_options`."""
    p = sub.add_parser(
        "predict",
        help="segment netCDF files with a trained checkpoint",
        description="Segment netCDF files of the training variables (any global lat-lon grid) with a "
        "checkpoint of experiments/climate_segmentation/train.py: one netCDF of LABELS per "
        "input, on the input's own grid, in OUTDIR.",
        formatter_class=HELP_FORMATTER,
        parents=[run_options(resume_help="skip inputs whose output is complete")],
    )
    p.set_defaults(num_workers=1)  # one process reading and regridding while the model runs
    p.add_argument("inputs", nargs="+", metavar="FILES_OR_FOLDERS", help="netCDF files, or folders searched for *.nc")
    p.add_argument("--checkpoint", required=True, help="RUN/checkpoint.pt of a spherical segmentation run")
    p.add_argument("--out", required=True, help="output folder (one file per input, same name)")
    p.add_argument(
        "--events",
        default=None,
        metavar="EVENTS.csv",
        help="write one CSV row per connected event (and EVENTS.frequency.npz beside it)",
    )
    p.add_argument("--probabilities", action="store_true", help="also write the class probabilities")
    p.add_argument("--batch-size", type=int, default=4, help="time steps per forward pass")
    p.add_argument(
        "--allow-nan",
        action="store_true",
        help="accept NaN/missing values in the fields (regridded from the valid points only; places "
        "without valid data get the training mean, recorded in the output's nan_* attributes)",
    )
    p.add_argument(
        "--max-nan-fraction",
        type=float,
        default=MAX_NAN_FRACTION,
        metavar="F",
        help="with --allow-nan: refuse a file where a variable is missing on more than this fraction of "
        "the globe at a time step (it would be filled with the training mean); 1 accepts any gap",
    )
    p.add_argument("--skip-bad", action="store_true", help="log and skip unusable input files instead of stopping")
    p.add_argument(
        "--dask",
        action="store_true",
        help="run the chunks (files, or --batch-size steps of a long file) on a dask.distributed cluster: "
        "a local one of --workers processes, or --scheduler; each worker loads the model once, this "
        "process writes the outputs (needs pip install 'meshcnn[dask]')",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        metavar="N",
        help="with --dask: worker processes of the local cluster (each with --threads torch threads)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="with --dask: the address of an existing scheduler (tcp://host:8786), not a local cluster",
    )


def _events_parser(sub: Any) -> None:
    """``meshcnn events summary``."""
    e = sub.add_parser("events", help="event statistics")
    esub = e.add_subparsers(dest="events_command", required=True)
    s = esub.add_parser(
        "summary",
        help="frequency maps and counts by hemisphere and latitude band",
        description="Per class: a PNG map of the fraction of time steps each place is inside an event "
        "(needs EVENTS.frequency.npz beside the CSV) and counts by hemisphere and latitude "
        "band (counts.csv, counts.md).",
    )
    s.add_argument("events", metavar="EVENTS.csv", help="CSV written by meshcnn predict --events")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--projection", choices=("mollweide", "equirectangular"), default="mollweide")


def _export_parser(sub: Any) -> None:
    """``meshcnn export``."""
    x = sub.add_parser(
        "export",
        help="write a checkpoint's model weights to .safetensors",
        description="Write the model weights of a training checkpoint to a .safetensors file, with the model "
        "config, the task and the meshcnn version as its metadata (meshcnn.tasks.load_safetensors_model "
        "rebuilds the model). Needs pip install 'meshcnn[weights]'.",
        formatter_class=HELP_FORMATTER,
    )
    x.add_argument("checkpoint", metavar="CHECKPOINT", help="RUN/checkpoint.pt (or the run folder) with a model config")
    x.add_argument("out", metavar="OUT.safetensors", help="the file to write (replaced if it exists)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshcnn", description="meshcnn: segmentation of climate model output on the icosphere"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _predict_parser(sub)
    _events_parser(sub)
    _export_parser(sub)
    return parser


def _predict(args: argparse.Namespace) -> dict[str, Any]:
    """``meshcnn predict``: segment the files, print what was done."""
    from .predict import predict_files

    apply_threads(args.threads)
    if (args.scheduler is not None) and not args.dask:
        raise ValueError("--scheduler needs --dask")
    with contextlib.ExitStack() as stack:
        client = None
        if args.dask:
            from .predict.distributed import import_distributed, local_client

            if args.scheduler is not None:
                client = stack.enter_context(import_distributed().Client(args.scheduler))
            else:
                client = stack.enter_context(local_client(args.workers))
        result = predict_files(
            args.inputs,
            args.checkpoint,
            args.out,
            events=args.events,
            probabilities=args.probabilities,
            resume=args.resume,
            device=args.device,
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            allow_nan=args.allow_nan,
            max_nan_fraction=args.max_nan_fraction,
            skip_bad=args.skip_bad,
            progress=not args.no_progress,
            log_fn=lambda msg: print(msg, file=sys.stderr),
            client=client,
            worker_threads=args.threads,
        )
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in result["seconds"].items())
    print(
        f"{result['written']} written, {result['skipped_complete']} already complete, "
        f"{len(result['bad'])} bad, of {result['files']} files ({result['time_steps']} time steps) "
        f"in {result['wall_s']:.1f} s; stages: {stages}"
    )
    if args.events:
        print(f"{result['events']} events -> {args.events}")
    return result


def _events_summary(args: argparse.Namespace) -> dict[str, Any]:
    """``meshcnn events summary``: counts and maps, print what was written."""
    from .predict import summarize

    result = summarize(args.events, args.out, projection=args.projection)
    print(
        f"{result['num_events']} events"
        + (f" in {result['num_steps']} time steps" if result["num_steps"] else "")
        + f"; wrote {args.out}/counts.csv, counts.md"
        + (
            f" and {len(result['maps'])} maps"
            if result["maps"]
            else " (no frequency maps: the .frequency.npz beside the CSV is missing)"
        )
    )
    return result


def _export(args: argparse.Namespace) -> Any:
    """``meshcnn export``: the checkpoint's model as .safetensors, print what was written."""
    from .tasks.export import export_safetensors

    out = export_safetensors(args.checkpoint, args.out)
    print(f"wrote {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``meshcnn`` command.

    Returns
    -------
    int
        Exit status 0; errors exit with status 1 and ``meshcnn: error: ...`` on stderr.
    """
    run(argv)
    return 0


def run(argv: list[str] | None = None) -> Any:
    """Run the command line and return the result of the command.

    Raises
    ------
    SystemExit
        With status 1 (the message on stderr) for a bad input, checkpoint or folder;
        with status 2 for bad arguments (``argparse``).
    """
    args = _parser().parse_args(argv)
    from .data.climate import ClimateFileError
    from .predict import PredictError

    try:
        if args.command == "predict":
            return _predict(args)
        if args.command == "events" and args.events_command == "summary":
            return _events_summary(args)
        if args.command == "export":
            return _export(args)
    except (PredictError, ClimateFileError, FileNotFoundError, NotADirectoryError, ValueError, ImportError) as exc:
        print(f"meshcnn: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    return None


if __name__ == "__main__":
    sys.exit(main())
