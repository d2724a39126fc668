"""``rectlab`` entry point: builds the parser (``cli.parsers``, which imports nothing of the library), imports
the handler module of the command given, and turns expected errors into one clear line instead of a traceback
(``--debug`` shows the traceback). ``rectlab --version`` and ``--help`` never import torch."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from ..errors import RectlabError, disk_error
from .parsers import add_all


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rectlab",
        description="Use, study and compare rectifier-family activation functions.",
        epilog="examples:\n"
        "  rectlab compare --activations relu,prelu,gelu --out runs/quickstart\n"
        "  rectlab train --model mlp --activation smelu:beta=0.5 --dataset digits --epochs 5\n"
        "  rectlab reproduce prelu --scale quick\n"
        "  rectlab list activations\n"
        "  rectlab COMMAND --help          # each command's options and examples",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rectlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument(
        "--import", dest="global_imports", action="append", metavar="MODULE", default=None, help=IMPORT_HELP
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_all(sub)
    for command in sub.choices.values():
        command.add_argument(
            "--import", dest="imports", action="append", metavar="MODULE", default=None, help=IMPORT_HELP
        )
    return parser


IMPORT_HELP = (
    "import a plugin module (a name or a .py path; repeat or comma-separate) that registers models, "
    "activations or datasets; study worker processes import it too"
)


def _one_line(error: BaseException) -> str | None:
    """The one-line message of an error the user can fix, or None for a bug (which keeps its traceback).

    rectlab's own errors ([RectlabError][rectlab.errors.RectlabError]) say what was wrong and how to fix it; an
    ``OSError`` of the disk (full, read-only, no permission) says so wherever it was raised.
    """
    if isinstance(error, RectlabError):
        return str(error)
    if isinstance(error, OSError):
        disk = disk_error(error, str(error.filename) if error.filename else "a file")
        return str(disk) if disk is not None else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    from .. import timings

    startup = timings.process_seconds()
    try:
        return _main(argv)
    finally:
        timings.write(startup)
        if argv is None:  # the process is the command (not a caller's main([...])): it ends next
            # Tearing down torch's hundreds of thousands of objects at exit takes 1-2 s on a 2-core machine;
            # frozen, the interpreter's last collections skip them (files, databases and atexit handlers close
            # as usual).
            import gc

            gc.freeze()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("RECTLAB_DEBUG") == "1"
    try:
        from ..plugins import import_modules, load_entry_points, normalize_imports

        load_entry_points()
        args.imports = normalize_imports((args.global_imports or []) + (getattr(args, "imports", None) or []))
        import_modules(args.imports)
        return int(handler(args.handler)(args) or 0)
    except KeyboardInterrupt:
        print(
            "\nrectlab: interrupted; finished epochs are saved, run the same command again to resume.", file=sys.stderr
        )
        return 130
    except Exception as e:
        message = _one_line(e)
        if debug or message is None:
            raise
        print(f"rectlab: error: {message}", file=sys.stderr)
        print("(run with --debug for the full traceback)", file=sys.stderr)
        return 2


def handler(name: str) -> Callable[[argparse.Namespace], int | None]:
    """The function ``"rectlab.cli.compare:run"`` names, its module imported now (commands import the library)."""
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
