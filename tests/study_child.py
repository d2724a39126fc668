"""A study run in a child process for the crash tests (tests/test_crash.py): not a test module.

    python tests/study_child.py OUT SPEC.toml [--kill POINT:N] [--executor processes --workers 2]

``--kill POINT:N`` sends SIGKILL to this process at the N-th call of POINT: ``commit`` (checkpoint-e.pt
written, its row not), ``committed`` (row committed, checkpoint not renamed), ``replace`` (before the N-th
os.replace: odd N inside the checkpoint write, even N between commit and rename), ``finish`` (every epoch
committed, the run not yet marked done) or ``start`` (just after a run is marked running).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from rectlab.study import Store, load_spec, run_study


def kill_at(point: str, n: int) -> None:
    calls = {"n": 0}

    def wrap(owner, name, after=False):
        original = getattr(owner, name)

        def patched(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == n and not after:
                os.kill(os.getpid(), signal.SIGKILL)
            result = original(*args, **kwargs)
            if calls["n"] == n and after:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        setattr(owner, name, patched)

    if point == "replace":
        wrap(os, "replace")
    else:
        name = {"commit": "commit_epoch", "committed": "commit_epoch", "finish": "finish_run", "start": "start_run"}[
            point
        ]
        wrap(Store, name, after=point in ("committed", "start"))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("spec")
    p.add_argument("--kill", default=None)
    p.add_argument("--executor", default="local")
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args()
    # Ctrl-C as in a terminal: a suite started in the background of a non-interactive shell inherits SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.kill:
        point, n = args.kill.split(":")
        kill_at(point, int(n))
    print("started", flush=True)
    try:
        run_study(load_spec(args.spec), args.out, executor=args.executor, workers=args.workers, progress=False)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
