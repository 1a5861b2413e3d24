#!/bin/bash
# hostpulse: InfluxDB 2.7 first-run set-up (runs once, on an empty data volume, after the
# image's own set-up created the org, the bucket and the admin token from .env).
# - InfluxQL: an explicit database/retention-policy mapping for the bucket (what Grafana queries).
# - Least privilege: a write-only login for the bridge, a read-only login for Grafana, both
#   InfluxDB 1.x-compatible (username/password, taken from .env), scoped to this one bucket.
set -euo pipefail

: "${DOCKER_INFLUXDB_INIT_BUCKET_ID:?}" "${DOCKER_INFLUXDB_INIT_BUCKET:?}" "${DOCKER_INFLUXDB_INIT_ORG:?}"
: "${HOSTPULSE_INFLUX_BRIDGE_PASSWORD:?set INFLUX_BRIDGE_PASSWORD in .env}"
: "${HOSTPULSE_INFLUX_GRAFANA_PASSWORD:?set INFLUX_GRAFANA_PASSWORD in .env}"

org="$DOCKER_INFLUXDB_INIT_ORG"
bucket_id="$DOCKER_INFLUXDB_INIT_BUCKET_ID"

influx v1 dbrp create --org "$org" --bucket-id "$bucket_id" \
  --db "$DOCKER_INFLUXDB_INIT_BUCKET" --rp autogen --default

influx v1 auth create --org "$org" --username hostpulse_bridge \
  --password "$HOSTPULSE_INFLUX_BRIDGE_PASSWORD" --write-bucket "$bucket_id" \
  --description "hostpulse bridge: write only"

influx v1 auth create --org "$org" --username hostpulse_grafana \
  --password "$HOSTPULSE_INFLUX_GRAFANA_PASSWORD" --read-bucket "$bucket_id" \
  --description "hostpulse Grafana: read only"

echo "hostpulse: InfluxQL mapping and the bridge's and Grafana's logins are ready"
