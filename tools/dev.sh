#!/usr/bin/env bash
# Set up an isolated environment and run the demo or the tests.
#
#   bash tools/dev.sh demo   # train configs/vit_digits.py to the end
#   bash tools/dev.sh test   # run the whole test suite (2 worker processes)
#
# The environment lives in .venv (MMLR_VENV overrides). It is installed from
# requirements.txt once; later runs reinstall only when requirements.txt or
# setup.py changed. Needs only python3.11 (PYTHON overrides) and pip.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${MMLR_VENV:-.venv}
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3

if [ ! -x "$venv/bin/python" ]; then
  echo "Creating $venv with $("$python" --version)"
  "$python" -m venv "$venv"
fi
stamp="$venv/.mmlr-installed"
wanted=$(cat requirements.txt setup.py | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "Installing requirements into $venv (about two minutes the first time)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r requirements.txt
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-deps --no-build-isolation -e .
  echo "$wanted" > "$stamp"
fi

case "${1:-}" in
  demo) shift; exec "$venv/bin/python" tools/train.py configs/vit_digits.py "$@" ;;
  # Two worker processes (a test module stays on one, so its module-scoped
  # runs are made once); "-n 0" runs everything in this process.
  test) shift; exec "$venv/bin/python" -m pytest tests -n 2 --dist loadscope "$@" ;;
  *) echo "usage: bash tools/dev.sh {demo|test} [extra args]" >&2; exit 2 ;;
esac
