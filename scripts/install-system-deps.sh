#!/usr/bin/env bash
# Install the Debian packages the tests, benches and demo need.
#
# As root: apt-get update once, then install what is missing (a no-op, and fast, when
# everything is present: checked with dpkg-query). Not root: print the exact
# `sudo apt-get install ...` line for what is missing and exit 1.
#
#   pcscd vsmartcard-vpcd       PC/SC daemon and the vpcd virtual reader (virtual card)
#   opensc                      an independent JPKI client (tests/functional/test_opensc.py)
#   libpcsclite-dev swig gcc python3-dev   build pyscard from source
#   python3-venv                `python3 -m venv` on Debian's own Python
#   chromium fonts-noto-cjk xvfb xdotool zbar-tools xauth   e2e tests and keyboard output
#   nodejs npm (when no npm is on PATH)   axe-core for the accessibility checks
set -euo pipefail

PACKAGES=(
  pcscd vsmartcard-vpcd opensc libpcsclite-dev swig gcc python3-dev python3-venv
  chromium fonts-noto-cjk xvfb xdotool zbar-tools xauth python3-tk
)

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = "installed" ]
}

missing=()
for package in "${PACKAGES[@]}"; do
  installed "$package" || missing+=("$package")
done
# npm fetches axe-core for the accessibility checks. Any Node.js with npm will do (some
# machines carry NodeSource's nodejs, which bundles npm and conflicts with Debian's npm).
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)

if [ "${#missing[@]}" -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "install them with:" >&2
  echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
