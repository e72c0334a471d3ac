# Sourced by .ci/run and .ci/claims: make (or reuse) the virtual environment and install the suite.
# RARE_FRESH_VENV=1 rebuilds it from scratch (CI does).
set -euo pipefail
VENV="${RARE_VENV:-.venv}"
if [ "${RARE_FRESH_VENV:-0}" = "1" ]; then rm -rf "$VENV"; fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
# torch==2.13.0 is pinned in pyproject.toml: a bare torch would pull a multi-GB CUDA build.
if ! "$VENV/bin/python" -m pip install -q -e ".[dev]" > "$VENV/pip-install.log" 2>&1; then
  cat "$VENV/pip-install.log" >&2
  exit 1
fi
"$VENV/bin/python" -c "import harness, torch, transformer_lens" >/dev/null
