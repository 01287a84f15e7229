#!/usr/bin/env bash
# Install what featviz needs into .venv (once), then run the benchmark (torch-lucent is added to .venv
# by the script itself). Arguments go to bench/benchmark.py, e.g. ./bench.sh --quick
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
exec .venv/bin/python bench/benchmark.py "$@"
