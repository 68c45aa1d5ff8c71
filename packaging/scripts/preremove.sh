#!/bin/sh
# On removal (not upgrade), stop and disable the service. State in /var/lib/sluice is kept.
set -e
case "$1" in
  0|remove|purge)
    systemctl disable --now sluice.service >/dev/null 2>&1 || true ;;
esac
