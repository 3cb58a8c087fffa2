#!/usr/bin/env bash
# Debian's docker-compose (to validate docker-compose.yml where no Docker engine runs),
# Chromium (the dashboard's browser test drives it through Playwright) and, with the argument
# `bench`, the wrk load generator.
set -euo pipefail
wanted=(docker-compose chromium)
[ "${1:-}" = bench ] && wanted+=(wrk)
missing=()
for tool in "${wanted[@]}"; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "install: ${missing[*]} (Debian packages)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "install: ${missing[*]} missing and not root: install them with your package manager" >&2
fi
