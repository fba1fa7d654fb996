#!/usr/bin/env bash
# Make Docker usable here: an engine that answers, and the default base image.
#
# - No engine answering `docker info`: install Debian's docker.io if dockerd is
#   missing, and start dockerd (as root) with its log in /tmp/modelwire-dockerd.log.
# - No `python:3.11-slim` image (no registry is reachable on these machines):
#   debootstrap a minimal Debian bookworm with python3 and python3-venv and
#   `docker import` it under that tag (about a minute).
# Idempotent: does nothing when both are already there.
set -euo pipefail

BASE_IMAGE="${MODELWIRE_BASE_IMAGE:-python:3.11-slim}"
log() { echo "docker-setup: $*" >&2; }

if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    log "no Docker engine answers and this is not root; start dockerd yourself"; exit 1
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q docker.io >/tmp/modelwire-apt-docker.log 2>&1 || {
      apt-get update -q >>/tmp/modelwire-apt-docker.log 2>&1
      apt-get install -y -q docker.io >>/tmp/modelwire-apt-docker.log 2>&1 || {
        tail -20 /tmp/modelwire-apt-docker.log >&2; exit 1; }
    }
  fi
  log "starting dockerd ..."
  nohup dockerd >/tmp/modelwire-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { tail -20 /tmp/modelwire-dockerd.log >&2; exit 1; }
fi

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap ..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null 2>&1 || {
      apt-get update -q >/dev/null 2>&1
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; }
  fi
  root=$(mktemp -d /tmp/modelwire-base.XXXXXX)
  log "building $BASE_IMAGE from Debian bookworm with debootstrap (about a minute) ..."
  debootstrap --variant=minbase --include=python3,python3-venv bookworm "$root" \
    >/tmp/modelwire-debootstrap.log 2>&1 || { tail -20 /tmp/modelwire-debootstrap.log >&2; exit 1; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"
  log "imported $BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE") bytes)"
fi
