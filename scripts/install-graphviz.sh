#!/usr/bin/env bash
# Installs the graphviz `dot` binary (needed only for pictures) when it is missing.
# It says what it will run before running it. In a terminal it asks first (TNDIAG_YES=1 skips
# the question); without a terminal (CI) it proceeds after saying so, unless TNDIAG_NO_INSTALL=1.
set -eu
command -v dot >/dev/null 2>&1 && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo "
if command -v apt-get >/dev/null 2>&1; then
  CMD="${SUDO}apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${SUDO}apt-get install -y -qq graphviz"
elif command -v dnf >/dev/null 2>&1; then
  CMD="${SUDO}dnf install -y -q graphviz"
elif command -v brew >/dev/null 2>&1; then
  CMD="brew install graphviz"
else
  echo "install-graphviz: no known package manager; install graphviz (the 'dot' binary) by hand" >&2
  exit 1
fi
echo "install-graphviz: graphviz's 'dot' program (used to draw diagrams) is not on PATH."
echo "install-graphviz: this will run: $CMD"
if [ "${TNDIAG_NO_INSTALL:-}" = "1" ]; then
  echo "install-graphviz: TNDIAG_NO_INSTALL=1: not installing; pictures need 'dot'" >&2
  exit 1
fi
if [ "${TNDIAG_YES:-}" != "1" ]; then
  if [ -t 0 ]; then
    printf "install-graphviz: proceed? [y/N] "
    read -r answer
    case "$answer" in y|Y|yes|YES) ;; *) echo "install-graphviz: skipped; pictures need 'dot'" >&2; exit 1 ;; esac
  else
    echo "install-graphviz: not a terminal: proceeding (TNDIAG_NO_INSTALL=1 refuses)"
  fi
fi
eval "$CMD"
command -v dot >/dev/null 2>&1
