#!/usr/bin/env bash
# The dashboard's chart library, vendored into the package at build time so that the page
# never loads anything from a CDN: uPlot (MIT) from the npm registry, version pinned.
# Idempotent; used by `make install` and the Dockerfile.
set -euo pipefail
version="${UPLOT_VERSION:-1.6.32}"
dest="${1:-service/static/vendor}"
if [ -f "$dest/uPlot.iife.min.js" ] && [ "$(cat "$dest/.version" 2>/dev/null)" = "$version" ]; then
  exit 0
fi
. "$(dirname "$0")/need.sh"
need npm=npm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tarball=$(cd "$work" && npm pack --silent "uplot@$version" 2>/dev/null | tail -n 1)
tar -xzf "$work/$tarball" -C "$work"
mkdir -p "$dest"
cp "$work/package/dist/uPlot.iife.min.js" "$work/package/dist/uPlot.min.css" "$work/package/LICENSE" "$dest/"
echo "$version" > "$dest/.version"
echo "install: uPlot $version vendored into $dest"
