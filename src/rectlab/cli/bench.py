"""``rectlab bench gpu``: check rectlab on this machine's GPU in one command (see `rectlab.gpucheck`)."""

from __future__ import annotations

import argparse

from ..gpucheck import run as check


def run(args: argparse.Namespace) -> int:
    return int(check(args) or 0)
