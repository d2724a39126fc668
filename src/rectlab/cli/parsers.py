"""The argument parsers of every subcommand, without importing the library.

Building these imports argparse and nothing of rectlab but ``cli.common``'s argument types, so
``rectlab --version``, ``--help`` and ``rectlab CMD --help`` answer at once (torch takes seconds to import).
Each parser names its handler: ``handler="rectlab.cli.compare:run"``; ``cli.main`` imports that module only
when the command runs. The choice lists here (optimizers, schedules, executors, scales ...) are the
library's; a test checks they are the same tuples.
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import (
    add_execution_args,
    add_training_args,
    csv_list,
    finite_float,
    float_list,
    positive_int,
)

__all__ = ["BENCH_GPU", "COMMANDS", "INITS", "LIST_KINDS", "SCALES", "add_all"]

INITS = ("default", "he", "he-fan-out", "xavier", "xavier-fan-in")  # rectlab.training.config.INITS
SCALES = ("smoke", "quick", "full")  # rectlab.study.spec.SCALES
LIST_KINDS = ("activations", "models", "datasets", "studies")
BENCH_GPU = (
    "check rectlab on this GPU: the fused kernels' self-check, their speed beside torch.nn, a training step; "
    "writes gpu-report.md and gpu-report.json (--device cpu: a reduced form)"
)

ACTIVATION_SYNTAX = (
    "parameters go after the name: NAME:key=value,key=value (e.g. smelu:beta=0.5, "
    "leaky-relu:negative_slope=0.2); see `rectlab list activations`"
)
MODEL_KWARGS_HELP = (
    "keyword arguments of the model, key=value,... (e.g. hidden=512 for mlp, width=2 for wrn; "
    "values are read as numbers, true/false or text)"
)


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _parser(
    sub: argparse._SubParsersAction, name: str, handler: str, *, examples: tuple[str, ...], **kwargs: Any
) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name, epilog=_examples(*examples), formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs
    )
    p.set_defaults(handler=handler)
    return p


def add_compare(sub: argparse._SubParsersAction) -> None:
    p = _parser(
        sub,
        "compare",
        "rectlab.cli.compare:run",
        help="compare activations over seeds and report an honest verdict",
        description="Train every combination of the given activations, models, datasets and transforms over "
        "several seeds, store the results in OUT/results.db, and write OUT/report.html. Re-running the same "
        "command skips finished runs and resumes interrupted ones.",
        examples=(
            "rectlab compare --activations relu,prelu,gelu --out runs/quickstart   # the main job, ~6 min on 2 cores",
            "rectlab compare --activations relu,smelu:beta=0.5,smelu:beta=2 --dataset digits --seeds 3",
            "rectlab compare --activations relu,elu --model resnet20 --dataset cifar10 --epochs 30 --lr 0.05,0.1",
            "rectlab compare --activations relu,prelu --model mlp --model-kwargs hidden=512 --dry-run",
        ),
    )
    p.add_argument(
        "--activations",
        default="relu,prelu,gelu",
        help="comma-separated activations (default relu,prelu,gelu); " + ACTIVATION_SYNTAX,
    )
    p.add_argument("--baseline", default=None, help="activation the others are compared with (default: the first)")
    p.add_argument(
        "--model",
        type=csv_list,
        default=["mlp"],
        help="model name(s) (default mlp: 2x256, which trains to a plateau in minutes on 2 CPU cores)",
    )
    p.add_argument("--model-kwargs", default=None, metavar="KEY=VALUE,...", help=MODEL_KWARGS_HELP)
    p.add_argument(
        "--dataset", type=csv_list, default=["fashion-mnist"], help="dataset name(s) (default fashion-mnist)"
    )
    p.add_argument("--seeds", type=int, default=5, help="seeds per cell (default 5)")
    # defaults that bring the default mlp to a plateau on Fashion-MNIST in minutes on 2 CPU cores
    add_training_args(p, lists=True, epochs=10, batch_size=256, sgd_lr=0.1, augment=False)
    p.add_argument("--init", type=csv_list, default=["default"], help=f"{' | '.join(INITS)} (list = grid)")
    p.add_argument(
        "--erase-relu",
        type=float_list,
        default=[0.0],
        help="EraseReLU proportion(s) of basic modules, e.g. 0,1 (list = grid)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="study directory: results.db, checkpoints, report (default runs/compare-ACTIVATIONS-MODEL-"
        "DATASET, printed at the start)",
    )
    p.add_argument("--name", default=None, help="study name shown in the report")
    add_execution_args(p)
    # both cores of a 2-core machine: two single-threaded workers train ~1.35x more images/s than one 2-thread process
    p.set_defaults(executor="processes", workers=2)


def add_run(sub: argparse._SubParsersAction) -> None:
    p = _parser(
        sub,
        "run",
        "rectlab.cli.run:run",
        help="run a study spec (TOML)",
        description="Run every pending run of a TOML study spec (see rectlab/specs/ for examples), then print "
        "the table and write the report. In a spec, activations take parameters as in the command line: "
        'activation = ["relu", "smelu:beta=0.5"].',
        examples=(
            "rectlab run my-study.toml                       # writes runs/my-study",
            "rectlab run my-study.toml --scale quick --out runs/q --executor processes --workers 2",
        ),
    )
    p.add_argument("spec", help="path of the study .toml")
    p.add_argument("--out", default=None, help="study directory (default runs/<spec name>)")
    p.add_argument("--scale", default=None, help="apply the spec's [scales.NAME] overrides (e.g. quick, full)")
    add_execution_args(p)


def add_train(sub: argparse._SubParsersAction) -> None:
    p = _parser(
        sub,
        "train",
        "rectlab.cli.train:run",
        help="train one model (also across processes with torchrun)",
        description="Train one model and print its per-epoch metrics; with --out, checkpoint every epoch (a re-run "
        "resumes) and write OUT/metrics.json and OUT/metrics.csv. Started by torchrun, the run trains with "
        "DistributedDataParallel across all processes: --batch-size is the global batch, split evenly between them.",
        examples=(
            "rectlab train --model mlp --activation prelu --dataset digits --epochs 5 --out runs/one",
            "rectlab train --model resnet20 --activation smelu:beta=0.5 --dataset cifar10 --tensorboard --out runs/r",
            "torchrun --nproc-per-node 4 -m rectlab train --model resnet56 --dataset cifar10 --out runs/big",
        ),
    )
    p.add_argument("--model", default="small-cnn", help="model name (default small-cnn)")
    p.add_argument("--model-kwargs", default=None, metavar="KEY=VALUE,...", help=MODEL_KWARGS_HELP)
    p.add_argument("--activation", default="relu", help="activation (default relu); " + ACTIVATION_SYNTAX)
    p.add_argument("--dataset", default="fashion-mnist", help="dataset name (default fashion-mnist)")
    p.add_argument("--seed", type=int, default=0)
    add_training_args(p)
    p.add_argument("--init", choices=INITS, default="default")
    p.add_argument("--erase-relu", type=finite_float, default=0.0, help="EraseReLU proportion of basic modules")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (under torchrun: this rank's GPU)")
    p.add_argument("--data-dir", default=None, help="the folder that holds the dataset (an error if it does not)")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads (default: torch's choice)")
    p.add_argument(
        "--out", default=None, help="run directory: checkpoint.pt (resumable), metrics.json, metrics.csv, tracker logs"
    )
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="log to OUT/tensorboard (needs --out); view with: tensorboard --logdir OUT/tensorboard",
    )
    p.add_argument(
        "--mlflow",
        action="store_true",
        help="log to the MLflow file store OUT/mlruns (needs --out); view with: mlflow ui "
        "--backend-store-uri OUT/mlruns",
    )


def add_report(sub: argparse._SubParsersAction) -> None:
    p = _parser(
        sub,
        "report",
        "rectlab.cli.report:run",
        help="report a study directory",
        description="Read DIR/results.db, print the table and verdict, and write DIR/report.md, "
        "DIR/report.html and DIR/plots/*.png.",
        examples=("rectlab report runs/quickstart",),
    )
    p.add_argument("dir", help="study directory (the --out of compare/run)")


def add_reproduce(sub: argparse._SubParsersAction) -> None:
    p = _parser(
        sub,
        "reproduce",
        "rectlab.cli.reproduce:run",
        help="reproduce a paper's claim about rectifiers (see --list)",
        description="Run the study specs of a paper reproduction (rectlab/specs/*.toml) at a scale, then write "
        "OUT/reproduction.md and OUT/reproduction.html: the claim with its published numbers, our results "
        "(n seeds, mean, std, confidence intervals, differences and p-values) and a verdict (reproduced / weaker "
        "than claimed / not reproduced / contradicted / inconclusive) with its reason and stability. Re-running the "
        "same command skips finished runs. 'all --scale quick' also rewrites RESULTS.md beside the specs.",
        examples=(
            "rectlab reproduce --list",
            "rectlab reproduce xor-prelu --scale smoke        # seconds",
            "rectlab reproduce prelu --scale quick            # minutes on a CPU",
            "rectlab reproduce all --scale quick --out runs/all",
        ),
    )
    p.add_argument("name", nargs="?", help="the reproduction (see --list), or 'all'")
    p.add_argument("--list", action="store_true", help="list the reproductions with one line each")
    p.add_argument(
        "--scale",
        default="quick",
        choices=SCALES,
        help="quick: CPU, minutes (default); full: GPU-sized, the paper's setting; smoke: a test run",
    )
    p.add_argument("--out", default=None, help="output directory (default runs/repro-NAME-SCALE)")
    p.add_argument(
        "--dataset",
        default=None,
        help="run on this dataset instead of the spec's (e.g. fashion-mnist when CIFAR is missing)",
    )
    p.add_argument(
        "--studies", default=None, help="folder of the study specs (default: the specs shipped with rectlab)"
    )
    p.add_argument(
        "--budget-check",
        action="store_true",
        help="instead of the verdict: train the first 3 seeds of every cell at twice the epochs and record in the "
        "specs folder (budget-checks.json) whether the metric moved by more than half the margin; reports then show it",
    )
    p.add_argument(
        "--results",
        default=None,
        help="with 'all': write the RESULTS.md table here (default at quick scale: RESULTS.md in the specs folder; "
        "'none' skips it)",
    )
    add_execution_args(p, dry_run=False)
    # both cores of a 2-core machine: two single-threaded worker processes (the quick budgets assume them)
    p.set_defaults(executor="processes", workers=2)


def add_search(sub: argparse._SubParsersAction) -> None:
    p = _parser(
        sub,
        "search",
        "rectlab.cli.search:run",
        help="search compositions of unary/binary functions for an activation (Ramachandran et al. 2017)",
        description="Screen the candidates of a search space, score them by training a child network (one study per "
        "rung in OUT/rung<i>), then train the winners and the baselines with several seeds (OUT/final). Winners are "
        "activations by name: search:OUT/1 or search:<expression>. Re-running the same command resumes.",
        examples=(
            "rectlab search --preset smoke --out runs/search-smoke",
            "rectlab search --preset quick --top-k 4",
            "rectlab compare --activations 'relu,search:runs/search-quick/1' --dataset fashion-mnist",
        ),
    )
    p.add_argument(
        "--preset",
        default="quick",
        choices=SCALES,
        help="a scale of the shipped settings (rectlab/specs/activation-search.toml); default quick",
    )
    p.add_argument("--config", default=None, help="a search TOML of your own (its [scales.PRESET] applies)")
    p.add_argument("--out", default=None, help="output folder (default runs/search-PRESET)")
    p.add_argument(
        "--strategy",
        default=None,
        choices=("exhaustive", "random", "halving"),
        help="override the settings' strategy (the paper's RL controller is not implemented)",
    )
    p.add_argument("--candidates", type=int, default=None, help="override how many candidates to sample (0 = all)")
    p.add_argument("--top-k", type=int, default=None, help="override how many winners go to the final comparison")
    p.add_argument(
        "--baselines",
        default=None,
        help="override the activations the winners are compared with, e.g. relu,smelu:beta=0.5; " + ACTIVATION_SYNTAX,
    )
    p.add_argument("--no-final", action="store_true", help="stop after ranking (no final comparison)")
    add_execution_args(p)


def add_export(sub: argparse._SubParsersAction) -> None:
    p = _parser(
        sub,
        "export",
        "rectlab.cli.export:run_export",
        help="write a study's results as CSV or Parquet (one row per run or per epoch)",
        description="Write the runs of DIR (the --out folder of compare, run or reproduce; every study folder "
        "below it is read) as a table: one row per run with its config and final metrics (--per run), or one "
        "row per epoch (--per epoch). The same table as rectlab.report.to_frame(DIR) in Python.",
        examples=(
            "rectlab export runs/quickstart --csv                 # runs/quickstart/results.csv",
            "rectlab export runs/quickstart --parquet --per epoch",
        ),
    )
    p.add_argument("dir", help="study or reproduction directory")
    fmt = p.add_mutually_exclusive_group(required=True)
    fmt.add_argument("--csv", nargs="?", const="", metavar="FILE", help="write CSV (default DIR/results.csv)")
    fmt.add_argument(
        "--parquet",
        nargs="?",
        const="",
        metavar="FILE",
        help="write Parquet (needs pyarrow; default DIR/results.parquet)",
    )
    p.add_argument("--per", choices=("run", "epoch"), default="run", help="one row per run (default) or per epoch")

    m = _parser(
        sub,
        "export-model",
        "rectlab.cli.export:run_export_model",
        help="export a trained model to ONNX (standard operators only), checked against PyTorch",
        description="Rebuild the trained model of a checkpoint that rectlab wrote (compare, run and reproduce: "
        "OUT/runs/<hash>/checkpoint.pt, whose config is in OUT/results.db; train --out: OUT/checkpoint.pt) and "
        "export it to ONNX with standard operators: PReLU as PRelu with a [C,1,1] slope, HeLU as Relu, SmeLU and "
        "Swish (learned beta) as elementwise ops. The exporter is chosen automatically (TorchScript, falling back to "
        "the dynamo exporter when it fails). The file is then run with onnxruntime on real test images of the "
        "run's dataset (random inputs of the right shape when the data is not found) and compared with PyTorch; "
        "the largest difference and the tolerance are printed.",
        examples=(
            "rectlab export-model runs/quickstart/runs/<hash>/checkpoint.pt --onnx model.onnx",
            "rectlab export-model runs/one --onnx one.onnx --exporter dynamo --samples 64",
        ),
    )
    m.add_argument("checkpoint", help="a checkpoint.pt that rectlab wrote (or its folder)")
    m.add_argument(
        "--onnx",
        default=None,
        metavar="FILE",
        help="the .onnx file to write (default: model.onnx beside the checkpoint)",
    )
    m.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17 with the TorchScript exporter)")
    m.add_argument(
        "--exporter",
        choices=("auto", "torchscript", "dynamo"),
        default="auto",
        help="torch.onnx exporter (default auto: TorchScript, then dynamo if TorchScript fails)",
    )
    m.add_argument(
        "--samples", type=positive_int, default=16, help="test images the ONNX output is checked on (default 16)"
    )
    m.add_argument(
        "--atol",
        type=finite_float,
        default=1e-4,
        help="the largest absolute difference from PyTorch accepted (default 1e-4)",
    )
    m.add_argument("--no-check", action="store_true", help="do not compare onnxruntime's output with PyTorch's")
    m.add_argument("--data-dir", default=None, help="where the run's dataset is looked for (for the check)")


def add_plot(sub: argparse._SubParsersAction) -> None:
    p = _parser(
        sub,
        "plot",
        "rectlab.cli.plot:run",
        help="plot activations (and their derivatives) on one figure",
        description="Plot rectlab activations as their modules compute them. --derivative adds the gradient "
        "autograd computes (what training uses); where the backward is a surrogate gradient (HeLU) the "
        "forward's own derivative is drawn dotted beside it. Parameters: NAME:key=value,key=value (e.g. "
        "smelu:beta=0.5) or --param key=value for every activation that takes it (a = the negative slope of "
        "prelu and leaky-relu).",
        examples=(
            "rectlab plot relu gelu smelu:beta=0.5 --derivative --out acts.png",
            "rectlab plot relu,helu,smelu:beta=2 --range -3 3 --out acts.svg",
            "rectlab plot prelu leaky-relu --param a=0.25",
        ),
    )
    p.add_argument(
        "activations",
        nargs="+",
        metavar="ACT",
        help="activations, space- or comma-separated, e.g. relu helu smelu:beta=0.5",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter for every named activation that takes it (repeatable), e.g. a=0.25",
    )
    p.add_argument("--derivative", action="store_true", help="add the derivative panel")
    p.add_argument(
        "--range", type=float, nargs=2, default=(-4.0, 4.0), metavar=("LO", "HI"), help="x range (default -4 4)"
    )
    p.add_argument("--out", default="activations.png", help="image file: .png, .svg or .pdf (default activations.png)")


def add_list(sub: argparse._SubParsersAction) -> None:
    p = _parser(
        sub,
        "list",
        "rectlab.cli.listing:run",
        help="list registered activations, models, datasets or studies",
        description="List what can be named: activations (with the parameters they take), models, "
        "datasets and the paper reproductions, including those of installed plugins and --import modules.",
        examples=("rectlab list", "rectlab list activations", "rectlab --import my_plugin.py list models"),
    )
    p.add_argument("kind", nargs="?", choices=LIST_KINDS, default=None, help="what to list (default: all)")


def add_env(sub: argparse._SubParsersAction) -> None:
    p = _parser(
        sub,
        "env",
        "rectlab.cli.env:run",
        help="show versions, device, fused-kernel backends and the data found",
        description="Show versions, the device, which implementation each activation runs with backend='auto' "
        "on this machine (the fused Triton kernel, rectlab's CPU function, or the plain-torch reference) and why, "
        "and where each dataset was found. --check runs the fused kernels' self-check now.",
        examples=("rectlab env", "rectlab env --check            # on a GPU, or with TRITON_INTERPRET=1"),
    )
    p.add_argument("--data-dir", default=None)
    p.add_argument("--check", action="store_true",
                   help="self-check every fused kernel now (fp32 and bf16, NCHW and channels_last) on the GPU, "
                        "or on the CPU in Triton's interpreter when TRITON_INTERPRET=1")  # fmt: skip


def add_bench(sub: argparse._SubParsersAction) -> None:
    p = _parser(
        sub,
        "bench",
        "rectlab.cli.bench:run",
        help="check rectlab on this machine's GPU (bench gpu)",
        description="Benchmarks measure and print; they are not tests. The developer benchmarks are scripts in the "
        "repository's benchmarks/ folder; `rectlab bench gpu` is the one that ships with rectlab.",
        examples=("rectlab bench gpu", "rectlab bench gpu --device cpu   # the reduced form, without a GPU"),
    )
    bsub = p.add_subparsers(dest="bench", metavar="BENCH")
    bsub.required = True
    bp = bsub.add_parser("gpu", help=BENCH_GPU, description=BENCH_GPU)
    bp.add_argument("--device", default="auto", help="auto, cuda, cuda:N, or cpu for the reduced form")
    bp.add_argument("--out", default=".", help="folder for gpu-report.md and gpu-report.json (default: here)")
    bp.add_argument("--skip", default="", help="comma-separated stages to skip: selfcheck, kernels, train")


def add_analyze(sub: argparse._SubParsersAction) -> None:
    p = _parser(
        sub,
        "analyze",
        "rectlab.cli.analyze:run",
        help="statistics and verdicts for a table of results (CSV, Parquet) computed elsewhere",
        description="Read one row per run from a CSV/TSV/Parquet file (exported from TensorBoard, W&B, MLflow or "
        "`rectlab export`), compare every value of --by with --baseline (paired by --pair-by), print the table "
        "and verdicts of a study, and write OUT/report.md and OUT/report.html.",
        examples=(
            "rectlab analyze results.csv --metric test_error --by activation --baseline relu",
            "rectlab analyze runs.parquet --metric accuracy --goal max --by activation --baseline relu --tasks dataset",
        ),
    )
    p.add_argument("file", help="the table: one row per run (.csv, .tsv or .parquet)")
    p.add_argument("--metric", required=True, help="the column compared, e.g. test_error")
    p.add_argument("--by", required=True, help="the column whose values are compared, e.g. activation")
    p.add_argument("--baseline", required=True, help="the value of --by the others are compared with, e.g. relu")
    p.add_argument(
        "--pair-by",
        default="seed",
        help="the column that pairs runs across cells (default seed; 'none': unpaired, Welch's t-test)",
    )
    p.add_argument(
        "--tasks",
        type=csv_list,
        default=None,
        help="columns whose values are separate tasks (dataset,model): compared within each, and "
        "aggregated across them (IQM, probability of improvement, performance profiles)",
    )
    p.add_argument(
        "--goal",
        choices=("min", "max"),
        default="min",
        help="min: lower is better (errors, losses; default); max: higher is better (accuracy)",
    )
    p.add_argument("--out", default=None, help="where the report goes (default: FILE's folder / FILE's name-analysis)")
    p.add_argument("--name", default=None, help="the report's title")


# Subcommand name -> the function adding its parser, in the order of `rectlab --help`.
COMMANDS = {
    "compare": add_compare,
    "run": add_run,
    "train": add_train,
    "report": add_report,
    "analyze": add_analyze,
    "reproduce": add_reproduce,
    "search": add_search,
    "export": add_export,
    "plot": add_plot,
    "list": add_list,
    "env": add_env,
    "bench": add_bench,
}


def add_all(sub: argparse._SubParsersAction) -> None:
    """Add every subcommand's parser (``export`` adds ``export-model`` too)."""
    for add in COMMANDS.values():
        add(sub)
