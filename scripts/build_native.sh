#!/usr/bin/env bash
# Build compiled modules of netprobe/_native in place (development; `pip install` builds them too).
# Usage: scripts/build_native.sh [NAME...]   (default: every netprobe/_native/*.c)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
INC=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
EXT=$($PY -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in netprobe/_native/*.c; do names+=("$(basename "$f" .c)"); done
fi
for n in "${names[@]}"; do
  gcc -O2 -std=c11 -Wall -Wextra -Wno-unused-function -ffp-contract=off -fno-strict-aliasing \
      -fPIC -shared -I"$INC" "netprobe/_native/$n.c" -o "netprobe/_native/$n$EXT"
  echo "built netprobe/_native/$n$EXT"
done
