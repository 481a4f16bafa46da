#!/bin/sh
# Install omigen, its built-in plugins and (with --dev) the test tools into the virtual environment $VENV.
#
# torch: on a machine without an NVIDIA GPU the CPU build is taken (much smaller, no CUDA
# libraries); with a GPU the regular build from the package index is used. Set OMIGEN_TORCH
# to a pip requirement (e.g. "torch==2.13.0") to choose yourself.
set -eu
VENV=${VENV:-.venv}
PIP="$VENV/bin/python -m pip"
DEV=0
[ "${1:-}" = "--dev" ] && DEV=1

if ! $VENV/bin/python -c "import torch" 2>/dev/null; then
    if [ -n "${OMIGEN_TORCH:-}" ]; then
        $PIP install "$OMIGEN_TORCH"
    elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        echo "omigen: NVIDIA GPU found, installing the CUDA build of torch"
        $PIP install "torch>=2.2"
    else
        echo "omigen: no NVIDIA GPU found, installing the CPU build of torch"
        $PIP install "torch==2.13.0" --extra-index-url "${OMIGEN_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
    fi
fi

set -- -e .
for plugin in plugins/*/pyproject.toml; do
    [ -f "$plugin" ] && set -- "$@" -e "$(dirname "$plugin")"
done
if [ "$DEV" = 1 ]; then
    set -- -e ".[dev]" "$@"
    for example in examples/*/pyproject.toml; do
        [ -f "$example" ] && set -- "$@" -e "$(dirname "$example")"
    done
fi
$PIP install "$@"
