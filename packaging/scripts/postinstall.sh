#!/bin/sh
# State and log directories owned by the service user; the unit is enabled, not started.
set -e
install -d -o sluice -g sluice -m 0750 /var/lib/sluice /var/log/sluice
chgrp sluice /etc/sluice/sluice.yml 2>/dev/null || true
chmod 0640 /etc/sluice/sluice.yml 2>/dev/null || true
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
systemctl enable sluice.service >/dev/null 2>&1 || true
