#!/usr/bin/env bash
# Make Docker usable for modelwire's builds and docker tests, on a fresh CI machine or a
# developer's: an engine that answers `docker info`, docker-compose, and the default base
# image. Idempotent, and quiet when everything is there already (about a second).
#
# - Engine. If `docker info` fails:
#   * permission denied on the socket, not root: say how to get access, exit 1;
#   * not root otherwise: say to run this as root, exit 1;
#   * as root: install Debian's docker.io if dockerd is missing; wait for a dockerd that
#     is still starting (up to 60 s); stop one that never answers; clear what a dead
#     daemon leaves behind (stale pid files, a stale socket); then start dockerd
#     (log: /tmp/modelwire-dockerd.log). If it cannot start as is, try again without
#     iptables (containers in CI often lack NET_ADMIN; published ports still work,
#     through docker-proxy), then also with the vfs storage driver (no overlay mounts).
#   A DOCKER_HOST other than the local socket is waited for (60 s), never started.
# - docker-compose: Debian's (1.29) is installed when missing (as root).
# - Base image: without `python:3.11-slim` (no registry is reachable on these machines),
#   debootstrap a minimal Debian bookworm with python3 and python3-venv from this
#   machine's apt mirror (and apt proxy), `docker import` it under that tag, and check
#   that it runs Python 3.11 with venv (about a minute).
# Runs one at a time (flock), so parallel CI jobs on one machine do not race.
set -euo pipefail

BASE_IMAGE="${MODELWIRE_BASE_IMAGE:-python:3.11-slim}"
SUITE=bookworm # Python 3.11, as in python:3.11-slim
DOCKERD_LOG=/tmp/modelwire-dockerd.log
RUN_DIR="${DOCKER_SETUP_RUN_DIR:-/var/run}" # where dockerd keeps its pid file and socket
log() { echo "docker-setup: $*" >&2; }
die() { log "$*"; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
engine_ok() { timeout 20 docker info >/dev/null 2>&1; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

apt_install() { # apt_install PACKAGE...: quietly, updating the lists once if needed
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "$@" >/tmp/modelwire-apt-docker.log 2>&1 || {
    apt-get update -q >>/tmp/modelwire-apt-docker.log 2>&1
    apt-get install -y -q "$@" >>/tmp/modelwire-apt-docker.log 2>&1 || {
      tail -20 /tmp/modelwire-apt-docker.log >&2; die "could not install $*"; }
  }
}

wait_engine() { # wait_engine SECONDS [PID]: until `docker info` answers, or PID dies
  local i
  for ((i = 0; i < $1; i++)); do
    engine_ok && return 0
    if [ -n "${2:-}" ] && ! alive "$2"; then return 1; fi
    sleep 1
  done
  engine_ok
}

stop_daemon() { # stop_daemon PID: SIGTERM, then SIGKILL after 15 s
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 1 15); do alive "$1" || return 0; sleep 1; done
  kill -9 "$1" 2>/dev/null || true
}

clear_stale() { # what a dead daemon leaves behind makes a new one refuse to start
  local f pid sock="$RUN_DIR/docker.sock"
  for f in "$RUN_DIR/docker.pid" "$RUN_DIR/docker/containerd/containerd.pid"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    if ! alive "$pid"; then log "removing stale $f"; rm -f "$f"; fi
  done
  # a directory (made by a bind mount of a missing socket), or a dead daemon's socket
  if [ -e "$sock" ] && { [ ! -S "$sock" ] || ! pgrep -x dockerd >/dev/null; }; then
    log "removing stale $sock"
    rm -rf "$sock"
  fi
}

detached() { # detached CMD...: in the background, in its own session, holding none of our fds
  # A daemon that inherited the lock (fd 9) or a pipe of the caller's would hold it for its
  # whole life: the next docker-setup.sh would wait on the lock forever, and a CI runner
  # would wait for the pipe's EOF.
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid nohup "$@" >"$DOCKERD_LOG" 2>&1 </dev/null
  ) &
}

start_engine() {
  local flags pid
  if [ -d /run/systemd/system ] && systemctl cat docker.service >/dev/null 2>&1; then
    log "starting docker.service ..."
    systemctl start docker.service >/dev/null 2>&1 && wait_engine 60 && return 0
    log "docker.service did not come up; starting dockerd by hand"
  fi
  for flags in "" "--iptables=false" "--iptables=false --storage-driver=vfs"; do
    clear_stale
    log "starting dockerd ${flags:-(default options)} ..."
    # shellcheck disable=SC2086  # flags are words
    detached dockerd $flags
    pid=$!
    if wait_engine 60 "$pid"; then return 0; fi
    log "dockerd ${flags:-(default options)} did not come up:"
    tail -5 "$DOCKERD_LOG" >&2 || true
    stop_daemon "$pid"
  done
  return 1
}

ensure_engine() {
  engine_ok && return 0
  local why
  why=$(timeout 20 docker info 2>&1 >/dev/null || true)
  if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST}" != "unix://$RUN_DIR/docker.sock" ]; then
    log "waiting for the engine at DOCKER_HOST=$DOCKER_HOST ..."
    wait_engine 60 || die "no engine answers at DOCKER_HOST=$DOCKER_HOST: $why"
    return 0
  fi
  if ! is_root; then
    case "$why" in
      *"permission denied"*)
        die "the Docker socket is not accessible to $(id -un): add it to the 'docker' group" \
          "(sudo usermod -aG docker $(id -un), then log in again), or run as root" ;;
      *) die "no Docker engine answers ($why); run this script as root to start one" ;;
    esac
  fi
  command -v dockerd >/dev/null 2>&1 || { log "installing docker.io ..."; apt_install docker.io; }
  command -v docker >/dev/null 2>&1 || apt_install docker.io
  local pid
  pid=$(pgrep -o -x dockerd || true)
  if [ -n "$pid" ]; then # half-started, or hung
    log "dockerd ($pid) is running but does not answer yet; waiting up to 60 s ..."
    wait_engine 60 "$pid" && return 0
    log "dockerd ($pid) never answered; stopping it"
    stop_daemon "$pid"
  fi
  start_engine || { tail -20 "$DOCKERD_LOG" >&2 || true; die "could not start dockerd"; }
}

ensure_compose() {
  command -v docker-compose >/dev/null 2>&1 && return 0
  is_root || die "docker-compose is missing: install it (apt-get install docker-compose)"
  log "installing docker-compose ..."
  apt_install docker-compose
}

apt_mirror() { # the Debian mirror apt uses here, else deb.debian.org
  local uri
  uri=$( { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
           grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}'; } |
         grep -E '/debian/?$' | grep -v security | head -n 1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

ensure_base() {
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
  docker pull -q "$BASE_IMAGE" >/dev/null 2>&1 && return 0 # a registry may be reachable
  is_root || die "no image $BASE_IMAGE, and making one with debootstrap needs root"
  command -v debootstrap >/dev/null 2>&1 || { log "installing debootstrap ..."; apt_install debootstrap; }
  [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || apt_install debian-archive-keyring
  local proxy root mirror
  proxy=$(apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -n 1)
  if [ -n "$proxy" ]; then export http_proxy="$proxy"; fi
  mirror=$(apt_mirror)
  root=$(mktemp -d /var/tmp/modelwire-base.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  log "building $BASE_IMAGE: debootstrap $SUITE from $mirror (about a minute) ..."
  debootstrap --variant=minbase --include=python3,python3-venv \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg "$SUITE" "$root" "$mirror" \
    >/tmp/modelwire-debootstrap.log 2>&1 ||
    { tail -20 /tmp/modelwire-debootstrap.log >&2; die "debootstrap failed"; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"
  trap - EXIT
  log "imported $BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE") bytes)"
}

check_base() {
  local got
  got=$(docker run --rm --network none --entrypoint python3 "$BASE_IMAGE" \
    -c 'import sys, venv, ensurepip; print("%d.%d" % sys.version_info[:2])' 2>&1) ||
    die "$BASE_IMAGE cannot run python3 with venv: $got"
  [ "$got" = 3.11 ] || log "note: $BASE_IMAGE has Python $got (bundles dumped with 3.11 need 3.11)"
}

main() {
  exec 9>>"/tmp/modelwire-docker-setup.$(id -u).lock"
  if ! flock -w 900 9; then
    die "another docker-setup.sh has held /tmp/modelwire-docker-setup.$(id -u).lock for 15 min:" \
      "$(fuser /tmp/modelwire-docker-setup."$(id -u)".lock 2>/dev/null || echo '?')"
  fi
  ensure_engine
  ensure_compose
  ensure_base
  check_base
}

# sourced (by its tests), it only defines the functions
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
