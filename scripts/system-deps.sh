#!/usr/bin/env bash
# System packages the test suite uses beyond Python: Graphviz's `dot` (modelwire graph
# renders SVG/PNG with it), Chromium (the HTTP face's /docs page is tested in a real
# headless browser) and nghttp2's h2load (the native load generator of the benchmarks).
# Installs them with apt-get when missing and we are root; otherwise says what to install. Idempotent and quiet when everything is there.
set -euo pipefail

missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)

[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} with apt-get ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/tmp/modelwire-apt.log 2>&1 || {
    apt-get update -q >>/tmp/modelwire-apt.log 2>&1
    apt-get install -y -q "${missing[@]}" >>/tmp/modelwire-apt.log 2>&1 || {
      tail -20 /tmp/modelwire-apt.log >&2; exit 1; }
  }
else
  echo "please install: ${missing[*]} (e.g. sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
