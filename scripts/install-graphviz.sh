#!/usr/bin/env bash
# Installs the graphviz `dot` binary with the system package manager when it is missing.
set -eu
command -v dot >/dev/null 2>&1 && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq graphviz >/dev/null
elif command -v dnf >/dev/null 2>&1; then
  $SUDO dnf install -y -q graphviz
elif command -v brew >/dev/null 2>&1; then
  brew install graphviz
else
  echo "install-graphviz: no known package manager; install graphviz (the 'dot' binary) by hand" >&2
  exit 1
fi
command -v dot >/dev/null 2>&1
