#!/usr/bin/env bash
# Packaging check: build a wheel and an sdist from this checkout, install each into a fresh venv outside the
# checkout, and from a folder outside it run what a new user runs first:
#   pyprof --version; pyprof env; pyprof bench --quick --out X; python -c "import pyprof; pyprof.profile"
# An editable install (what the tests use) hides missing packages, package data and sdist files; this does not.
#
# The venvs use --system-site-packages so the system's torch (and the other dependencies) are not reinstalled;
# every run checks that `pyprof` itself is the venv's copy, not the checkout or a system/editable install.
# The wheel built from the repo runs all of that; the sdist is built into a wheel on its own, which must hold the same
# files, and that wheel runs all but the bench.
# Knobs: PYPROF_CUDA (as for setup.py; CI exports ON), WHEEL_CHECK_DIR (work folder, default a new temp dir, kept
# on failure), WHEEL_CHECK_BENCH=0 to skip the bench run (it takes 1-3 min on 2 cores).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${WHEEL_CHECK_DIR:-$(mktemp -d /tmp/pyprof-wheel-check.XXXXXX)}"
mkdir -p "$work"
py="${PYTHON:-python}"
constraints="$repo/.ci/constraints.txt"
log() { echo "wheel_check: $*" >&2; }

log "work folder $work"
cd "$repo"
rm -rf "$work/dist"
fresh_venv() {
  "$py" -m venv --system-site-packages "$1"
  # A 3.11 venv bundles an old setuptools (65) that would shadow the system's (setup.py needs >= 68, as pyproject
  # says); the build tools come from the system site-packages, as for the README's --no-build-isolation install.
  "$1/bin/python" -m pip uninstall -q -y setuptools
}
fresh_venv "$work/build-venv"
"$work/build-venv/bin/python" -m pip install -q -c "$constraints" build
log "building the wheel (PYPROF_CUDA=${PYPROF_CUDA:-AUTO})"
"$work/build-venv/bin/python" -m pip wheel -q --no-deps --no-build-isolation . -w "$work/dist"
log "building the sdist"
"$work/build-venv/bin/python" -m build -q --sdist --no-isolation --outdir "$work/dist" . >/dev/null

sdist=$(ls "$work"/dist/pyprof-*.tar.gz)
wheel=$(ls "$work"/dist/pyprof-*.whl)
# The sdist must carry what building needs and nothing built: fail early with the missing name.
listing=$(tar tzf "$sdist")
for need in setup.py pyproject.toml CMakeLists.txt README.md csrc/module.cpp pyprof/_C.pyi pyprof/py.typed \
            pyprof/data/efficiency_table1.csv pyprof/report/templates/base.html.j2; do
  grep -q "^pyprof-[^/]*/$need\$" <<<"$listing" || { log "FAIL: the sdist lacks $need (MANIFEST.in / package-data)"; exit 1; }
done
if grep -q '\.so$' <<<"$listing"; then log "FAIL: the sdist carries a built module: $(grep '\.so$' <<<"$listing")"; exit 1; fi

check_install() {  # $1: label, $2: the wheel to pip install, $3: 1 to run `pyprof bench --quick` too
  local label="$1" target="$2" bench="$3" venv="$work/venv-$1" run="$work/run-$1"
  rm -rf "$venv" "$run"
  fresh_venv "$venv"
  log "$label: installing $(basename "$target") into $venv"
  # --force-reinstall: a pyprof of the same version in the system site-packages (CI's editable install) must not
  # count as "already satisfied". Then the wheel's own declared dependencies, resolved under the constraints
  # (already satisfied by the system site-packages where present, fetched otherwise).
  "$venv/bin/python" -m pip install -q --no-build-isolation --force-reinstall --no-deps "$target"
  mapfile -t deps < <("$venv/bin/python" -c "import importlib.metadata as m
for r in m.requires('pyprof') or []:
    if 'extra ==' not in r: print(r)")
  "$venv/bin/python" -m pip install -q -c "$constraints" "${deps[@]}"
  mkdir -p "$run"
  cd "$run"  # outside the checkout: nothing here can shadow the installed package
  # PYTHONPATH cleared: a developer's PYTHONPATH=$PWD would import the checkout instead
  env -u PYTHONPATH "$venv/bin/python" - "$venv" "$repo" <<'PY'
import os, sys
venv, repo = (os.path.realpath(p) for p in sys.argv[1:3])
import pyprof
f = os.path.realpath(pyprof.__file__)
assert f.startswith(venv + os.sep), f"pyprof imported from {f}, not from the venv {venv}"
assert not any(os.path.realpath(p or ".") == repo for p in sys.path), f"the checkout {repo} is on sys.path"
pyprof.profile  # the lazy public API resolves
from pyprof._native import load_core
core = load_core()
assert os.path.realpath(core.__file__).startswith(venv + os.sep), core.__file__
from importlib import resources
assert resources.files("pyprof.report").joinpath("templates/base.html.j2").is_file()
assert resources.files("pyprof.data").joinpath("efficiency_table1.csv").is_file()
print(f"wheel_check: pyprof {pyprof.__version__} from {os.path.dirname(f)}")
PY
  env -u PYTHONPATH "$venv/bin/python" -c "import pyprof; pyprof.profile"
  local v; v=$(env -u PYTHONPATH "$venv/bin/pyprof" --version)
  [[ "$v" == "pyprof "* ]] || { log "FAIL: pyprof --version printed '$v'"; exit 1; }
  env -u PYTHONPATH "$venv/bin/pyprof" env >"$run/env.txt"
  if [ "$bench" = 1 ] && [ "${WHEEL_CHECK_BENCH:-1}" != 0 ]; then
    log "$label: pyprof bench --quick"
    env -u PYTHONPATH "$venv/bin/pyprof" bench --quick --out "$run/bench" >"$run/bench.txt" 2>"$run/bench.err" || {
      log "FAIL: pyprof bench --quick exited $? ($label)"; tail -20 "$run/bench.err" >&2; exit 1; }
    for f in report.json report.md report.html; do
      [ -s "$run/bench/$f" ] || { log "FAIL: pyprof bench --quick wrote no $f ($label)"; exit 1; }
    done
    # Every seed architecture of "Measuring the Algorithmic Efficiency of Neural Networks" must have been measured
    # (status ok), none skipped or failed: the list is the suite's own (pyprof.bench.workloads.VISION).
    env -u PYTHONPATH "$venv/bin/python" - "$run/bench/report.json" <<'PY' || { log "FAIL: seed architectures not all measured ($label)"; exit 1; }
import json, sys
from pyprof.bench.workloads import VISION
d = json.load(open(sys.argv[1]))
status = {w["id"]: (w["status"], w.get("reason") or "") for w in d["workloads"]}
bad = {k: status.get(k, ("absent", "")) for k in VISION if status.get(k, ("absent",))[0] != "ok"}
for k, (st, why) in bad.items():
    print(f"wheel_check: {k}: {st} {why}", file=sys.stderr)
print(f"wheel_check: {len(VISION) - len(bad)} of {len(VISION)} seed architectures measured: {', '.join(VISION)}")
sys.exit(1 if bad else 0)
PY
  fi
  cd "$repo"
  log "$label: ok"
}

check_install wheel "$wheel" 1

# The sdist: build a wheel from it alone (in pip's temp folder, outside the checkout), which proves the sdist carries
# what the build needs, and require the very same file list as the wheel built from the repo, so the run above
# covers it; then install that wheel and run the short checks (a second bench run would test nothing new).
log "sdist: building a wheel from $(basename "$sdist")"
"$work/build-venv/bin/python" -m pip wheel -q --no-deps --no-build-isolation "$sdist" -w "$work/dist-from-sdist"
sdist_wheel=$(ls "$work"/dist-from-sdist/pyprof-*.whl)
names() { "$py" -c "import sys, zipfile; print(*sorted(zipfile.ZipFile(sys.argv[1]).namelist()), sep='\n')" "$1"; }
if ! diff <(names "$wheel") <(names "$sdist_wheel") >&2; then
  log "FAIL: the wheel built from the sdist has other files than the wheel built from the repo (< repo, > sdist)"
  exit 1
fi
check_install sdist "$sdist_wheel" 0
log "ok: wheel and sdist install and run outside the checkout"
[ -n "${WHEEL_CHECK_DIR:-}" ] || rm -rf "$work"
