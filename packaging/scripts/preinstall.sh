#!/bin/sh
# Creates the system user sluice runs as.
set -e
if ! getent group sluice >/dev/null; then groupadd --system sluice; fi
if ! getent passwd sluice >/dev/null; then
  useradd --system --gid sluice --home-dir /var/lib/sluice --no-create-home --shell /usr/sbin/nologin \
    --comment "sluice security event collector" sluice
fi
