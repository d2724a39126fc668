"""``rectlab export DIR --csv|--parquet``: results as a table file; ``rectlab export-model CHECKPOINT --onnx F``
(the parsers are in ``cli.parsers``)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..data import DatasetNotFoundError
from ..export import dataset_samples, export_onnx
from ..report.frame import export
from ..study.trained import load_run_model


def run_export(args: argparse.Namespace) -> int:
    fmt = "csv" if args.csv is not None else "parquet"
    target = args.csv if fmt == "csv" else args.parquet
    suffix = "" if args.per == "run" else "-epochs"
    out = Path(target) if target else Path(args.dir) / f"results{suffix}.{fmt}"
    export(args.dir, out, fmt, per=args.per)
    print(f"wrote {out}")
    return 0


def run_export_model(args: argparse.Namespace) -> int:
    model, example, config = load_run_model(args.checkpoint, data_dir=args.data_dir)
    checkpoint = Path(args.checkpoint)
    onnx = Path(args.onnx) if args.onnx else (checkpoint if checkpoint.is_dir() else checkpoint.parent) / "model.onnx"
    check_input, what = None, ""
    if not args.no_check:
        try:
            check_input = dataset_samples(config, args.samples, data_dir=args.data_dir)
            what = f"{len(check_input)} test images of {config.dataset}"
        except DatasetNotFoundError:
            print(f"{config.dataset} not found: checking on random inputs of shape {tuple(example.shape[1:])}")
    inputs = {"check_input": check_input} if check_input is not None else {"input_shape": tuple(example.shape[1:])}
    result = export_onnx(
        model, onnx, **inputs, opset=args.opset, exporter=args.exporter, check=not args.no_check, atol=args.atol
    )
    if what and result.max_abs_diff is not None:
        result = dataclasses.replace(result, checked_on=what)
    print(f"{result.describe()} ({config.model}, {config.activation})")
    return 0
