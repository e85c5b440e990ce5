#!/bin/sh
# Installs Atrium into the `python` on PATH as the image holds it: the locked runtime
# dependencies (every hash checked, nothing resolved), then the project itself, without extras.
# The Dockerfile runs it, and so does tests/deploy/test_runtime_image.py, in a fresh virtualenv:
# what the test proves runs is what the image installs.
# Usage: deploy/install-runtime.sh [deps|project]   (both, in that order, without a step)
set -eu
cd "$(dirname "$0")/.."
step=${1:-all}
case $step in
  deps | project | all) ;;
  *) echo "usage: $0 [deps|project]" >&2; exit 2 ;;
esac
if [ "$step" != project ]; then
  # --require-hashes also refuses a dependency the lock lacks: the lock must be the whole tree.
  python -m pip install --require-hashes -r requirements/runtime.txt
fi
if [ "$step" != deps ]; then
  # Editable, so that BASE_DIR (templates, static, manage.py) stays the source tree.
  python -m pip install --no-deps -e .
  python -m pip check
fi
