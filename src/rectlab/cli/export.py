"""``rectlab export DIR --csv|--parquet``: results as a table file; ``rectlab export-model CHECKPOINT --onnx F``."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write a study's results as CSV or Parquet (one row per run or per epoch)",
        description="Write the runs of DIR (the --out folder of compare, run or reproduce; every study folder "
        "below it is read) as a table: one row per run with its config and final metrics (--per run), or one "
        "row per epoch (--per epoch). The same table as rectlab.report.to_frame(DIR) in Python.",
    )
    p.add_argument("dir", help="study or reproduction directory")
    fmt = p.add_mutually_exclusive_group(required=True)
    fmt.add_argument("--csv", nargs="?", const="", metavar="FILE", help="write CSV (default DIR/results.csv)")
    fmt.add_argument("--parquet", nargs="?", const="", metavar="FILE",
                     help="write Parquet (needs pyarrow; default DIR/results.parquet)")
    p.add_argument("--per", choices=("run", "epoch"), default="run", help="one row per run (default) or per epoch")
    p.set_defaults(func=run_export)

    m = sub.add_parser(
        "export-model", help="export a trained run's model to ONNX (standard operators only)",
        description="Rebuild the model of a study run from OUT/runs/<hash>/checkpoint.pt (its config comes from "
        "OUT/results.db) and export it to ONNX with standard operators: PReLU as PRelu with a [C,1,1] slope, "
        "HeLU as Relu, SmeLU and Swish (learned beta) as elementwise ops. The file is checked with onnxruntime "
        "against the PyTorch output.",
    )
    m.add_argument("checkpoint", help="OUT/runs/<hash>/checkpoint.pt (or its folder)")
    m.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")
    m.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17 with the TorchScript exporter)")
    m.add_argument("--exporter", choices=("auto", "torchscript", "dynamo"), default="auto",
                   help="torch.onnx exporter (default auto: TorchScript where torch still has it)")
    m.add_argument("--no-check", action="store_true", help="do not compare onnxruntime's output with PyTorch's")
    m.add_argument("--data-dir", default=None, help="where the run's dataset is looked for (for its shape)")
    m.set_defaults(func=run_export_model)


def run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..report.frame import export

    fmt = "csv" if args.csv is not None else "parquet"
    target = args.csv if fmt == "csv" else args.parquet
    suffix = "" if args.per == "run" else "-epochs"
    out = Path(target) if target else Path(args.dir) / f"results{suffix}.{fmt}"
    export(args.dir, out, fmt, per=args.per)
    print(f"wrote {out}")
    return 0


def run_export_model(args: argparse.Namespace) -> int:
    from ..export import export_onnx
    from ..study.trained import load_run_model

    model, example, config = load_run_model(args.checkpoint, data_dir=args.data_dir)
    result = export_onnx(model, args.onnx, example, opset=args.opset, exporter=args.exporter,
                         check=not args.no_check)
    diff = result.max_abs_diff
    checked = "" if diff is None else f"; onnxruntime matches PyTorch (max |diff| {diff:.2g})"
    print(f"wrote {result.path} ({config.model}, {config.activation}, {result.exporter} exporter{checked})")
    return 0
