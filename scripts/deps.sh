#!/bin/sh
# Installs the Debian packages hutch needs on the host, only if missing.
set -eu
missing=""
command -v runc >/dev/null 2>&1 || missing="$missing runc"
command -v mmdebstrap >/dev/null 2>&1 || missing="$missing mmdebstrap"
command -v busybox >/dev/null 2>&1 || missing="$missing busybox-static"
command -v git >/dev/null 2>&1 || missing="$missing git"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
# The browser terminal is bundled with npm; its test drives Chromium; the
# acceptance check of hutch shell runs it under tmux.
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
# The Python SDK is tested with Debian's python3, httpx and pytest.
/usr/bin/python3 -c 'import httpx' >/dev/null 2>&1 || missing="$missing python3-httpx"
/usr/bin/python3 -c 'import pytest' >/dev/null 2>&1 || missing="$missing python3-pytest"
# The code kernels' conformance suite runs the Python kernel on the host.
/usr/bin/python3 -c 'import ipykernel, zmq' >/dev/null 2>&1 || missing="$missing python3-ipykernel python3-zmq"
/usr/bin/python3 -c 'import matplotlib, matplotlib_inline' >/dev/null 2>&1 || missing="$missing python3-matplotlib python3-matplotlib-inline"
if [ -n "$missing" ]; then
  echo "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing ca-certificates >/dev/null
fi
