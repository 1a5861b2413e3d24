#!/bin/sh
# As the official eclipse-mosquitto 2.0 image does at start: when running as root, give /mosquitto to
# the broker's user. Read-only mounts below it (the stack's config) cannot change; that is not an error.
set -e
if [ "$(id -u)" = "0" ] && [ -d /mosquitto ]; then
  chown -R mosquitto:mosquitto /mosquitto || true
fi
exec "$@"
