"""Evaluate a trained shape classifier: overall and per-class accuracy and a confusion-matrix PNG.

Reads ``RUN_DIR/checkpoint.pt`` written by ``train.py`` (or by
``rotation_study.py``), rebuilds the model from the configuration stored in it
and classifies the test split, unrotated or (``--rotate``) with one fixed
random SO(3) rotation per shape. Writes ``RUN_DIR/evaluation_<N|R>.json`` and
``RUN_DIR/confusion_<N|R>.png``.

Example::

    python experiments/shape_classification/evaluate.py --run-dir runs/shapes/s2_NR --rotate
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from meshcnn.cli import HELP_FORMATTER, apply_threads, run_options
from meshcnn.data.shapes import ModelNet
from meshcnn.io import save_json
from meshcnn.metrics import confusion_matrix
from meshcnn.plot import plot_confusion_matrix
from meshcnn.tasks import build_model, model_config
from meshcnn.train import load_checkpoint, predict


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=HELP_FORMATTER, parents=[run_options(resume=False)]
    )
    p.add_argument("--run-dir", type=Path, required=True, help="folder with checkpoint.pt")
    p.add_argument("--data", type=Path, default=None, help="ModelNet-layout root (default: the training one)")
    p.add_argument("--split", choices=("train", "test"), default="test")
    p.add_argument("--rotate", action="store_true", help="one random SO(3) rotation per shape")
    p.add_argument("--seed", type=int, default=None, help="rotation seed (default: training seed + 1, as in training)")
    p.add_argument("--cache-dir", type=Path, default=None, help="projection cache (default: the training one)")
    p.add_argument("--skip-bad", action="store_true")
    p.add_argument("--mesh-dir", type=Path, default=None)
    p.add_argument("--batch-size", type=int, default=64)
    return p.parse_args(argv)


def _optional_path(text: str | None) -> Path | None:
    return None if text in (None, "None", "") else Path(text)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    apply_threads(args.threads)
    ckpt = load_checkpoint(args.run_dir)
    extra = ckpt["extra"]
    if "config" not in extra or "classes" not in extra:
        raise ValueError(f"{args.run_dir}: checkpoint has no model config (not written by the shape scripts)")
    train_args = extra.get("args", {})
    data = args.data or _optional_path(train_args.get("data"))
    if data is None:
        raise ValueError("--data is required: the checkpoint does not record the dataset folder")
    cache_dir = args.cache_dir or _optional_path(train_args.get("cache_dir"))
    seed = args.seed if args.seed is not None else int(ckpt.get("seed", 0)) + 1
    latlon = tuple(int(n) for n in extra.get("latlon", ())) or None
    config = model_config(extra["config"])
    dataset = ModelNet(
        data,
        args.split,
        config.level,
        rotate=args.rotate,
        cache_rotations=1 if args.rotate else None,
        cache_dir=cache_dir,
        skip_bad=args.skip_bad,
        grid=extra.get("grid", "mesh"),
        latlon=latlon,
        seed=seed,
        log=print,
    )
    classes = list(extra["classes"])
    if dataset.classes != classes:
        raise ValueError(f"{data}: classes {dataset.classes} differ from the model's {classes}")

    model = build_model(config, args.mesh_dir)
    model.load_state_dict(ckpt["model"])
    outputs, targets = predict(
        model,
        dataset,
        batch_size=args.batch_size,
        device=args.device,
        progress=not args.no_progress,
        num_workers=args.num_workers,
    )
    pred = outputs.argmax(dim=1).numpy()
    target = targets.numpy()
    cm = confusion_matrix(pred, target, len(classes))
    support = cm.sum(axis=1)
    per_class = np.divide(np.diag(cm), support, out=np.full(len(classes), np.nan), where=support > 0)
    overall = float((pred == target).mean())
    tag = "R" if args.rotate else "N"

    print(
        f"{args.run_dir} on {data} ({args.split}, {'rotated' if args.rotate else 'not rotated'}): "
        f"overall accuracy {100 * overall:.1f} % over {len(target)} shapes, "
        f"mean per-class accuracy {100 * np.nanmean(per_class):.1f} %"
    )
    print("| class | shapes | accuracy |\n|---|---|---|")
    for name, n, acc in zip(classes, support, per_class):
        print(f"| {name} | {int(n)} | {100 * acc:.1f} % |")
    png = plot_confusion_matrix(
        cm,
        classes,
        args.run_dir / f"confusion_{tag}.png",
        title=f"{args.split} ({'rotated' if args.rotate else 'not rotated'}): {100 * overall:.1f} %",
    )
    result = {
        "overall_accuracy": overall,
        "mean_class_accuracy": float(np.nanmean(per_class)),
        "per_class_accuracy": {c: (None if np.isnan(a) else float(a)) for c, a in zip(classes, per_class)},
        "support": {c: int(n) for c, n in zip(classes, support)},
        "confusion_matrix": cm.astype(int).tolist(),
        "classes": classes,
        "split": args.split,
        "rotated": args.rotate,
        "data": str(data),
    }
    save_json(args.run_dir / f"evaluation_{tag}.json", result)
    print(f"wrote {png} and {args.run_dir / f'evaluation_{tag}.json'}")
    return result


if __name__ == "__main__":
    main()
