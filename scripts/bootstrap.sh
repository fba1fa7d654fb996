#!/usr/bin/env bash
# Create .venv and install modelwire with its dev extras: a strict editable install, so
# only the packages pyproject.toml maps into `modelwire` import (core/ as modelwire,
# codegen/ as modelwire.codegen, ...). Re-runs only when pyproject.toml or the package
# layout changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || {
  echo "modelwire needs Python 3.10 or newer ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 1
}
stamp=".venv/.modelwire-installed"
# the package folders, as [tool.setuptools.package-dir] maps them: a new one counts at once
folders="$(sed -n 's/^"modelwire[^"]*" = "\([^"]*\)"$/\1/p' pyproject.toml)"
# shellcheck disable=SC2086  # one word per folder
want="$( { cat pyproject.toml; find $folders -name '*.py' | sort; } | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
echo "installing modelwire and its dev tools into .venv (log: .venv/install.log) ..." >&2
if ! { .venv/bin/python -m pip install --upgrade pip \
       && .venv/bin/python -m pip install -e '.[dev]' --config-settings editable_mode=strict; \
     } > .venv/install.log 2>&1; then
  tail -40 .venv/install.log >&2
  echo "install failed; the whole log is in .venv/install.log" >&2
  exit 1
fi
.venv/bin/python -c 'import modelwire.cli' || { echo "install failed" >&2; exit 1; }
echo "$want" > "$stamp"
