#!/usr/bin/env bash
# Install the Debian packages listed in apt-packages.txt that are not installed yet.
# Idempotent: when everything is there it does nothing and touches no network.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
while read -r line; do
  pkg="${line%%#*}"; pkg="$(echo "$pkg" | xargs)"
  [ -z "$pkg" ] && continue
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done < apt-packages.txt
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "apt: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
