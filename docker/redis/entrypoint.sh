#!/bin/sh
# The official redis image's entrypoint, the part docker-compose.yml uses: options alone mean `redis-server`
# with them; without a config file, bind every interface with protected mode off (the compose network is the
# boundary: Redis is never published); run as the redis user, owning /data.
set -eu
case "${1:-}" in -*) set -- redis-server "$@" ;; esac
if [ "${1:-}" = redis-server ]; then
  case "${2:-}" in
    *.conf) ;;
    *) shift; set -- redis-server --bind '* -::*' --protected-mode no "$@" ;;
  esac
  if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
