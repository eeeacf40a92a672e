#!/bin/sh
# Install (or upgrade) the loaxa playout agent from this bundle, without the internet.
#
#   sudo sh install.sh --server-url https://loaxa.example.vn --token dev_...
#
# What it does, in order:
#   1. finds Python 3.11 or newer (python3.13, python3.12, python3.11, python3; or --python);
#   2. makes a virtual environment in PREFIX/venv (default /opt/loaxa-agent/venv) and installs
#      the agent into it with  pip install --no-index --find-links wheels/  (this folder only);
#   3. writes CONFIG_DIR/agent.toml (default /etc/loaxa) from agent.example.toml unless it is
#      there already (an upgrade keeps it), with --server-url filled in, and the token, when
#      given, into CONFIG_DIR/agent.token, readable by the agent's user only;
#   4. with systemd (and without --no-service): creates the system user loaxa-agent (in the
#      "audio" group), installs loaxa-agent.service and runs  systemctl enable, then (re)start.
# Then:  PREFIX/venv/bin/loaxa-agent --config CONFIG_DIR/agent.toml --check
#
# Options: --prefix DIR, --config-dir DIR, --python PATH, --no-service (steps 1-3 only, e.g.
# in a container, or to run the agent by other means).
# Tested: steps 1-3 on x86_64 (the test suite installs the bundle into a fresh venv and runs
# the installed agent against a real server). Step 4 follows scripts/loaxa-agent.service but
# is not run by the tests (it needs root and a running systemd); aarch64 bundles are built the
# same way and not installed by the tests.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=/opt/loaxa-agent
CONFIG_DIR=/etc/loaxa
PYTHON=""
SERVICE=1
SERVER_URL=""
TOKEN=""

die() { echo "install.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX=${2:?}; shift 2 ;;
        --config-dir) CONFIG_DIR=${2:?}; shift 2 ;;
        --python) PYTHON=${2:?}; shift 2 ;;
        --server-url) SERVER_URL=${2:?}; shift 2 ;;
        --token) TOKEN=${2:?}; shift 2 ;;
        --no-service) SERVICE=0; shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

# 1. Python.
if [ -z "$PYTHON" ]; then
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            PYTHON=$(command -v "$candidate")
            break
        fi
    done
fi
[ -n "$PYTHON" ] || die "Python 3.11 or newer is needed (Debian 12: apt install python3 python3-venv)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$PYTHON is older than Python 3.11"
echo "Python: $PYTHON ($("$PYTHON" -c 'import sys; print(sys.version.split()[0])'))"

# 2. The virtual environment and the agent, from wheels/ only.
if [ ! -x "$PREFIX/venv/bin/python" ]; then
    mkdir -p "$PREFIX"
    "$PYTHON" -m venv "$PREFIX/venv" ||
        die "cannot make a virtual environment (Debian/Ubuntu: apt install python3-venv)"
fi
PIP_CONFIG_FILE=/dev/null "$PREFIX/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-index --find-links "$HERE/wheels" --upgrade loaxa-agent ||
    die "pip could not install the agent from $HERE/wheels (a bundle for another system or Python?)"
cp "$HERE/agent.example.toml" "$PREFIX/agent.example.toml"
echo "installed: $("$PREFIX/venv/bin/loaxa-agent" --version) in $PREFIX/venv"

# 3. Configuration and token.
mkdir -p "$CONFIG_DIR"
CONFIG="$CONFIG_DIR/agent.toml"
if [ ! -e "$CONFIG" ]; then
    sed -e "s#^token_file = .*#token_file = \"$CONFIG_DIR/agent.token\"#" \
        "$HERE/agent.example.toml" >"$CONFIG.new"
    if [ -n "$SERVER_URL" ]; then
        sed -i -e "s#^server_url = .*#server_url = \"$SERVER_URL\"#" "$CONFIG.new"
    fi
    mv "$CONFIG.new" "$CONFIG"
    echo "wrote $CONFIG"
else
    echo "kept $CONFIG"
    [ -z "$SERVER_URL" ] || echo "  (--server-url ignored: edit server_url there)"
fi
if [ -n "$TOKEN" ]; then
    (umask 077 && printf '%s\n' "$TOKEN" >"$CONFIG_DIR/agent.token")
    echo "wrote $CONFIG_DIR/agent.token"
fi

# 4. The service.
if [ "$SERVICE" = 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "run as root (sudo) to install the service, or add --no-service"
    if ! id loaxa-agent >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/loaxa-agent --shell /usr/sbin/nologin \
            --groups audio loaxa-agent
    fi
    chgrp loaxa-agent "$CONFIG_DIR" "$CONFIG"
    chmod 0750 "$CONFIG_DIR"
    chmod 0640 "$CONFIG"
    if [ -e "$CONFIG_DIR/agent.token" ]; then
        chgrp loaxa-agent "$CONFIG_DIR/agent.token"
        chmod 0640 "$CONFIG_DIR/agent.token"
    fi
    sed -e "s#@PREFIX@#$PREFIX#g" -e "s#@CONFIG@#$CONFIG#g" "$HERE/loaxa-agent.service" \
        >/etc/systemd/system/loaxa-agent.service
    systemctl daemon-reload
    systemctl enable loaxa-agent
    systemctl restart loaxa-agent # starts it; after an upgrade, runs the new version
    echo "service loaxa-agent enabled and started; logs: journalctl -u loaxa-agent -f"
else
    echo "no service installed; run:  $PREFIX/venv/bin/loaxa-agent --config $CONFIG"
fi
[ -e "$CONFIG_DIR/agent.token" ] || grep -q '^device_token' "$CONFIG" ||
    echo "next: put the device token (dev_...) in $CONFIG_DIR/agent.token"
echo "check: $PREFIX/venv/bin/loaxa-agent --config $CONFIG --check"
