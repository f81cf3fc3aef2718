#!/usr/bin/env bash
# Makes bench/.venv-peers: torch 2.13.0 first (the CPU wheel; a bare `torch` would pull a
# multi-GB CUDA build), then the peer counters of bench/peers-requirements.txt, then this
# checkout of costlens in editable mode. Run from anywhere:  bash bench/peers-env.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/bench/.venv-peers"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "torch==2.13.0"
# The constraint keeps the peers from replacing torch with another release.
constraint="$(mktemp)"
trap 'rm -f "$constraint"' EXIT
"$venv/bin/python" -c "import torch; print('torch==' + torch.__version__)" > "$constraint"
"$venv/bin/python" -m pip install --quiet -c "$constraint" -r "$root/bench/peers-requirements.txt"
"$venv/bin/python" -m pip install --quiet -c "$constraint" -e "$root"
"$venv/bin/python" -c "import torch, costlens; print('torch', torch.__version__, '| costlens from', costlens.__file__)"
echo "ready: $venv/bin/python bench/peers.py"
