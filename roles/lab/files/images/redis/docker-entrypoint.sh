#!/bin/sh
# opsdrill redis entrypoint, with the interface of the official redis image:
#  - a first argument that is an option or a *.conf file runs redis-server
#    with those arguments;
#  - redis-server started as root drops to the redis user (uid 999) after
#    giving it the working directory (/data);
#  - anything else is exec'd as is (e.g. "redis-cli").
# The upstream image compiles redis with protected mode off so other pods
# can connect; Debian's binary keeps the stock default, so without a config
# file we pass "--protected-mode no --bind 0.0.0.0 -::*" first (later
# arguments still override them).
set -e

case "$1" in
  -* | *.conf) set -- redis-server "$@" ;;
esac

if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' + 2>/dev/null || :
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

if [ "$1" = redis-server ]; then
  case "${2:-}" in
    '' | -*)
      shift
      set -- redis-server --protected-mode no --bind 0.0.0.0 '-::*' "$@"
      ;;
  esac
  # like upstream: files redis creates are private unless a umask was chosen
  um=$(umask)
  if [ "$um" = 0022 ]; then
    umask 0077
  fi
fi

exec "$@"
