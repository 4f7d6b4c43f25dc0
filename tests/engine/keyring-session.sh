#!/bin/sh
# keyring-session.sh — runs a test program in a private D-Bus session with its
# own unlocked gnome-keyring, in a temporary home, so it stores and reads real
# secrets without touching the user's keyring.
# Usage: keyring-session.sh PROGRAM [ARGS...]   (the program speaks TAP)
# SPDX-License-Identifier: MIT
#
# Without dbus-run-session or gnome-keyring-daemon (tools/install-deps --tests
# installs them) the test fails under CI and is skipped elsewhere.
set -u

unavailable () {
  if [ -n "${CI:-}" ]; then
    echo "Bail out! $1"
    exit 1
  fi
  echo "1..0 # SKIP $1"
  exit 0
}

if [ "${1:-}" = "--inside" ]; then
  shift
  # In the foreground, as this shell's child, so it is stopped and reaped
  # here rather than left to init. --unlock creates and unlocks the default
  # "login" keyring with the password read from stdin. The tests' G_DEBUG
  # (fatal-warnings) and malloc checks are for our code, not the daemon's.
  printf 'ruvllm-test' | env -u G_DEBUG -u MALLOC_CHECK_ -u MALLOC_PERTURB_ \
    gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 &
  daemon=$!
  i=0
  until gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
          --method org.freedesktop.DBus.NameHasOwner org.freedesktop.secrets 2>/dev/null \
        | grep -q true; do
    i=$((i + 1))
    if [ "$i" -gt 100 ] || ! kill -0 "$daemon" 2>/dev/null; then
      kill "$daemon" 2>/dev/null
      wait "$daemon" 2>/dev/null
      unavailable "gnome-keyring-daemon did not provide a Secret Service"
    fi
    sleep 0.1
  done
  "$@"
  status=$?
  kill "$daemon" 2>/dev/null
  wait "$daemon" 2>/dev/null
  exit "$status"
fi

for tool in dbus-run-session gnome-keyring-daemon gdbus; do
  command -v "$tool" >/dev/null 2>&1 || unavailable "$tool not found (tools/install-deps --tests)"
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ruv-keyring-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 143' INT TERM
mkdir -p "$tmp/data" "$tmp/config" "$tmp/cache" "$tmp/runtime" || exit 1
chmod 700 "$tmp/runtime"
export HOME="$tmp" XDG_DATA_HOME="$tmp/data" XDG_CONFIG_HOME="$tmp/config" \
  XDG_CACHE_HOME="$tmp/cache" XDG_RUNTIME_DIR="$tmp/runtime" RUV_TEST_KEYRING=1
# No display: nothing may try to show a keyring prompt.
unset DISPLAY WAYLAND_DISPLAY DBUS_SESSION_BUS_ADDRESS
dbus-run-session -- sh "$0" --inside "$@"
