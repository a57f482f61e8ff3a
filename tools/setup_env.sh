#!/usr/bin/env bash
# Sets up the project's environment (.venv) with the real OpenMMLab 2.x stack on torch 2.13.
#
# Idempotent: a stamp keyed on the pins, setup.py and this script makes a repeated call a no-op.
# mmcv 2.1.0 has no wheel on PyPI and compiles its C++ ops from source (~16 min on 2 cores):
# the built wheel is kept in a per-machine wheelhouse keyed on the exact torch build, so a new
# clone on the same machine installs it in seconds. A wheel without `mmcv._ext` (pip's
# build-isolation trap: torch missing in the build env => "Skip building ext ops") is refused.
#
# Environment: CONVNEXT_VENV (default <repo>/.venv), CONVNEXT_CACHE (default
# ~/.cache/convnext-backbone), CONVNEXT_BASE_PYTHON (the interpreter that creates the venv,
# default python3.11). A plain PYTHON variable is not read: it often means something else (the
# tools' launcher, tools/torchrun.sh, runs CONVNEXT_PYTHON, default the venv's python).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${CONVNEXT_VENV:-$ROOT/.venv}
BASE_PYTHON=${CONVNEXT_BASE_PYTHON:-python3.11}
CACHE=${CONVNEXT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/convnext-backbone}
CONSTRAINTS=$ROOT/requirements/constraints.txt
STAMP=$VENV/.stack-stamp
MMCV_VERSION=$(sed -n 's/^mmcv==\([0-9.]*\).*/\1/p' "$CONSTRAINTS")

say() { printf '[setup_env] %s\n' "$*" >&2; }
die() { printf '[setup_env] ERROR: %s\n' "$*" >&2; exit 1; }

key=$(cat "$CONSTRAINTS" "$ROOT/setup.py" "${BASH_SOURCE[0]}" 2>/dev/null | sha256sum | cut -c1-16)
if [[ -f $STAMP && $(cat "$STAMP") == "$key" ]]; then
    exit 0
fi
start=$SECONDS

[[ -x $VENV/bin/python ]] || { say "creating $VENV"; "$BASE_PYTHON" -m venv "$VENV"; }
PY=$VENV/bin/python
pip() { "$PY" -m pip --disable-pip-version-check "$@"; }

say "build tools and torch (standard build: torchvision needs it)"
pip install -q -c "$CONSTRAINTS" setuptools wheel ninja
pip install -q -c "$CONSTRAINTS" torch torchvision
"$PY" -c 'import torchvision' 2>/dev/null \
    || die "torchvision does not import with this torch: $("$PY" -c 'import torch; print(torch.__version__)'). The CPU-only torch wheel cannot load it; see requirements/constraints.txt."

wheel_has_ext() {  # (no `unzip -l | grep -q` here: grep's early exit + pipefail reads as failure)
    "$PY" -c 'import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist()
sys.exit(0 if any(n.startswith("mmcv/_ext") for n in names) else 1)' "$1"
}

torch_tag=$("$PY" -c 'import sys, torch; print(f"torch-{torch.__version__}-py{sys.version_info[0]}{sys.version_info[1]}")')
house=$CACHE/wheelhouse/$torch_tag
mkdir -p "$house"
wheel=$(ls "$house"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
if [[ -n $wheel ]] && ! wheel_has_ext "$wheel"; then
    say "discarding cached $wheel: it has no compiled ops"; rm -f "$wheel"; wheel=
fi
if [[ -z $wheel ]]; then
    say "building mmcv $MMCV_VERSION with its C++ ops against $torch_tag (about 16 minutes on 2 cores, once per machine)"
    tmp=$(mktemp -d)
    MAX_JOBS=${MAX_JOBS:-$(nproc)} MMCV_WITH_OPS=1 \
        pip wheel -q --no-build-isolation --no-deps --no-cache-dir --no-binary mmcv \
        -c "$CONSTRAINTS" -w "$tmp" "mmcv==$MMCV_VERSION"
    built=$(ls "$tmp"/mmcv-*.whl | head -n 1)
    wheel_has_ext "$built" || die "the mmcv build produced a wheel WITHOUT its compiled ops (mmcv/_ext): torch was not visible to the build. Build with torch installed and --no-build-isolation."
    mv "$built" "$house"/ && rm -rf "$tmp"
    wheel=$(ls "$house"/mmcv-"$MMCV_VERSION"-*.whl | head -n 1)
fi
say "installing $(basename "$wheel")"
pip install -q -c "$CONSTRAINTS" "$wheel"
"$PY" -c 'import mmcv.ops, mmcv._ext' 2>/dev/null \
    || die "mmcv is installed without its compiled ops (mmcv._ext does not import). Delete $house and re-run this script."

say "the OpenMMLab stack, test references and this package (editable)"
pip install -q -c "$CONSTRAINTS" --no-build-isolation -e "$ROOT[all]"

"$PY" - <<'PY' || die "the environment does not import cleanly (see above)"
import importlib
for name in ("torch", "torchvision", "mmengine", "mmcv.ops", "mmdet", "mmseg", "mmpretrain",
             "timm", "pycocotools", "convnext_backbone"):
    importlib.import_module(name)
PY
echo "$key" > "$STAMP"
say "ready in $((SECONDS - start)) s: $VENV"
