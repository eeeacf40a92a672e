#!/usr/bin/env bash
# Prepare this checkout to run loaxa: system packages (ffmpeg, espeak-ng, fonts, icecast2, mosquitto,
# and chromium for the console's browser tests), a virtual environment in .venv and the project installed
# into it. Safe to run again: it skips what is already done. Used by scripts/run-demo.sh and
# scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

say() { printf '[loaxa] %s\n' "$*" >&2; }

missing_system_packages() {
  local missing=()
  command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
  command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
  [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
  # Italic faces for the PDF report; pdftotext/pdffonts check the PDFs in the tests.
  [ -f /usr/share/fonts/truetype/dejavu/DejaVuSerif-Italic.ttf ] || missing+=(fonts-dejavu-extra)
  command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
  # The stream hub (relays of national and provincial radio): Debian's Icecast 2.4.
  command -v icecast2 >/dev/null 2>&1 || missing+=(icecast2)
  # The push broker: Debian's Mosquitto 2 and its dynamic-security plugin. loaxa runs its own
  # on LOAXA_MQTT_PORT (1884); the package may also start a system broker on 1883, which
  # loaxa neither uses nor stops.
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
  # The console's browser tests drive Debian's chromium (never `playwright install`).
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  # `loaxa backup` and `loaxa restore` on PostgreSQL run pg_dump and psql.
  case "${LOAXA_DATABASE_URL:-}${LOAXA_TEST_DATABASE_URL:-}" in
    postgres*) command -v pg_dump >/dev/null 2>&1 && command -v psql >/dev/null 2>&1 \
                 || missing+=(postgresql-client) ;;
  esac
  [ "${#missing[@]}" -eq 0 ] || printf '%s\n' "${missing[@]}"
}

apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else return 1; fi
  fi
  command -v apt-get >/dev/null 2>&1 || return 1
  say "installing system packages: $*"
  $sudo apt-get update -qq >/dev/null || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

mapfile -t missing < <(missing_system_packages)
if [ "${#missing[@]}" -gt 0 ]; then
  if ! apt_install "${missing[@]}"; then
    say "please install these system packages, then run again: ${missing[*]}"
    say "(Debian/Ubuntu: sudo apt-get install ${missing[*]})"
    exit 1
  fi
fi

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  say "loaxa needs Python 3.11 or newer; '$PYTHON' is $("$PYTHON" --version 2>&1)"
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  say "creating the virtual environment in .venv"
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    # Debian ships venv separately (python3-venv / python3.X-venv).
    pyver=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    apt_install "python${pyver}-venv" || apt_install python3-venv || {
      say "please install python3-venv, then run again"; exit 1; }
    "$PYTHON" -m venv .venv
  fi
fi

# Reinstall only when the dependency list changed.
stamp=.venv/.loaxa-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing loaxa and its dependencies into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
  echo "$want" > "$stamp"
fi
