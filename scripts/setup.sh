#!/usr/bin/env bash
# Set up rectlab in ./.venv (idempotent). Usage: bash scripts/setup.sh [--dev] [--data]
#   --dev   also install the test, lint and docs tools and the optional integrations the tests cover
#           (pytest, hypothesis, ruff, scikit-learn, ray, timm, tensorboard, pandas, onnx, lightning,
#           transformers, mkdocs)
#   --data  also install Fashion-MNIST from Debian's dataset-fashion-mnist package when apt is available
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0; data=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    --data) data=1 ;;
    *) echo "setup.sh: unknown option $arg (use --dev and/or --data)" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-ci.txt
extras=""
[ "$dev" = 1 ] && extras="[dev]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
if [ "$data" = 1 ] && [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] \
   && [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup.sh: installing Fashion-MNIST (Debian package dataset-fashion-mnist)"
    apt-get update -qq >/dev/null && apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "setup.sh: Fashion-MNIST not installed; rectlab will download it on first use when a network exists," >&2
    echo "          or install it with: sudo apt-get install dataset-fashion-mnist" >&2
  fi
fi
