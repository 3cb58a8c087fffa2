#!/usr/bin/env bash
# Debian's docker-compose (to validate docker-compose.yml where no Docker engine runs),
# Chromium (the dashboard's browser test drives it through Playwright) and, with the argument
# `bench`, the wrk load generator. Only the checks need them: without them the install goes on.
set -euo pipefail
. "$(dirname "$0")/need.sh"
wanted=(docker-compose=docker-compose chromium=chromium)
[ "${1:-}" = bench ] && wanted+=(wrk=wrk)
need "${wanted[@]}" || true
