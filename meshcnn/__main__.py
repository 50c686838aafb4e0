"""The ``meshcnn`` command (also ``python -m meshcnn``).

    meshcnn predict --checkpoint RUN/checkpoint.pt --out OUTDIR [--events EVENTS.csv] [--probabilities]
                    [--resume] [--device cpu|cuda] [--batch-size N] [--num-workers N] [--allow-nan]
                    [--skip-bad] FILES_OR_FOLDERS...
    meshcnn events summary EVENTS.csv --out DIR

The work is done by :func:`meshcnn.predict.predict_files` and :func:`meshcnn.predict.summarize`.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meshcnn", description="meshcnn: segmentation of climate model output "
                                     "on the icosphere")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="segment netCDF files with a trained checkpoint",
                       description="Segment netCDF files of the training variables (any global lat-lon grid) with a "
                                   "checkpoint of experiments/climate_segmentation/train.py: one netCDF of LABELS per "
                                   "input, on the input's own grid, in OUTDIR.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="FILES_OR_FOLDERS", help="netCDF files, or folders searched for *.nc")
    p.add_argument("--checkpoint", required=True, help="RUN/checkpoint.pt of a spherical segmentation run")
    p.add_argument("--out", required=True, help="output folder (one file per input, same name)")
    p.add_argument("--events", default=None, metavar="EVENTS.csv",
                   help="write one CSV row per connected event (and EVENTS.frequency.npz beside it)")
    p.add_argument("--probabilities", action="store_true", help="also write the class probabilities")
    p.add_argument("--resume", action="store_true", help="skip inputs whose output is complete")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--batch-size", type=int, default=4, help="time steps per forward pass")
    p.add_argument("--num-workers", type=int, default=1, help="DataLoader processes reading and regridding files")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op CPU threads (0: torch's default)")
    p.add_argument("--allow-nan", action="store_true",
                   help="accept NaN/missing values in the fields (regridded from the valid points only)")
    p.add_argument("--skip-bad", action="store_true", help="log and skip unusable input files instead of stopping")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")

    e = sub.add_parser("events", help="event statistics")
    esub = e.add_subparsers(dest="events_command", required=True)
    s = esub.add_parser("summary", help="frequency maps and counts by hemisphere and latitude band",
                        description="Per class: a PNG map of the fraction of time steps each place is inside an event "
                                    "(needs EVENTS.frequency.npz beside the CSV) and counts by hemisphere and latitude "
                                    "band (counts.csv, counts.md).")
    s.add_argument("events", metavar="EVENTS.csv", help="CSV written by meshcnn predict --events")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--projection", choices=("mollweide", "equirectangular"), default="mollweide")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``meshcnn`` command: exit status 0, or 1 with ``meshcnn: error: ...``."""
    run(argv)
    return 0


def run(argv: list[str] | None = None) -> Any:
    """Run the command line and return the result of the command (errors: ``SystemExit(1)``)."""
    args = _parser().parse_args(argv)
    from .data.climate.reader import ClimateFileError
    from .predict.runner import PredictError

    try:
        if args.command == "predict":
            import torch

            from .predict.runner import predict_files

            if args.threads > 0:
                torch.set_num_threads(args.threads)
            result = predict_files(args.inputs, args.checkpoint, args.out, events=args.events,
                                   probabilities=args.probabilities, resume=args.resume, device=args.device,
                                   batch_size=args.batch_size, num_workers=args.num_workers,
                                   allow_nan=args.allow_nan, skip_bad=args.skip_bad, progress=not args.no_progress,
                                   log_fn=lambda msg: print(msg, file=sys.stderr))
            stages = ", ".join(f"{k} {v:.1f} s" for k, v in result["seconds"].items())
            print(f"{result['written']} written, {result['skipped_complete']} already complete, "
                  f"{len(result['bad'])} bad, of {result['files']} files ({result['time_steps']} time steps) "
                  f"in {result['wall_s']:.1f} s; stages: {stages}")
            if args.events:
                print(f"{result['events']} events -> {args.events}")
            return result
        if args.command == "events" and args.events_command == "summary":
            from .predict.events import summarize

            result = summarize(args.events, args.out, projection=args.projection)
            print(f"{result['num_events']} events"
                  + (f" in {result['num_steps']} time steps" if result["num_steps"] else "")
                  + f"; wrote {args.out}/counts.csv, counts.md"
                  + (f" and {len(result['maps'])} maps" if result["maps"] else
                     " (no frequency maps: the .frequency.npz beside the CSV is missing)"))
            return result
    except (PredictError, ClimateFileError, FileNotFoundError, NotADirectoryError, ValueError) as exc:
        print(f"meshcnn: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    return None


if __name__ == "__main__":
    sys.exit(main())
