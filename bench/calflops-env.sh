#!/usr/bin/env bash
# Makes bench/.venv-calflops for bench/llama7b.py's calflops column: torch 2.13.0 first (the CPU
# wheel; a bare `torch` would pull a multi-GB CUDA build), then calflops and the transformers of
# costlens's test extra under a constraint that keeps that torch, then this checkout of costlens.
# calflops is not a dependency of costlens. Run from anywhere:  bash bench/calflops-env.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/bench/.venv-calflops"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "torch==2.13.0"
constraint="$(mktemp)"
trap 'rm -f "$constraint"' EXIT
"$venv/bin/python" -c "import torch; print('torch==' + torch.__version__)" > "$constraint"
"$venv/bin/python" -m pip install --quiet -c "$constraint" "calflops==0.3.2" "transformers==5.24.0"
"$venv/bin/python" -m pip install --quiet -c "$constraint" -e "$root"
"$venv/bin/python" -c "import torch, calflops, costlens; print('torch', torch.__version__, '| calflops imports')"
echo "ready: $venv/bin/python bench/llama7b.py"
