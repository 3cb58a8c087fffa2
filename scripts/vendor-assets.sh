#!/usr/bin/env bash
# The browser assets, vendored into the package at build time so that no page ever loads
# anything from a CDN: uPlot (MIT) for the dashboard's charts and swagger-ui-dist (Apache-2.0)
# for the OpenAPI page at /docs, both from the npm registry, versions pinned.
# Idempotent; used by `make install` and the Dockerfile's assets stage.
set -euo pipefail
uplot="${UPLOT_VERSION:-1.6.32}"
swagger="${SWAGGER_UI_VERSION:-5.35.0}"
dest="${1:-service/static/vendor}"
stamp="uplot@$uplot swagger-ui-dist@$swagger"
if [ -f "$dest/uPlot.iife.min.js" ] && [ -f "$dest/swagger-ui-bundle.js" ] \
  && [ "$(cat "$dest/.version" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
. "$(dirname "$0")/need.sh"
need npm=npm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# unpack PACKAGE@VERSION DIR: the package's tarball, unpacked into DIR/package.
unpack() {
  mkdir -p "$2"
  local tarball
  tarball=$(cd "$2" && npm pack --silent "$1" 2>/dev/null | tail -n 1)
  tar -xzf "$2/$tarball" -C "$2"
}
unpack "uplot@$uplot" "$work/uplot"
unpack "swagger-ui-dist@$swagger" "$work/swagger"
mkdir -p "$dest"
cp "$work/uplot/package/dist/uPlot.iife.min.js" "$work/uplot/package/dist/uPlot.min.css" "$dest/"
cp "$work/uplot/package/LICENSE" "$dest/LICENSE.uPlot"
for f in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png; do
  cp "$work/swagger/package/$f" "$dest/"
done
cp "$work/swagger/package/LICENSE" "$dest/LICENSE.swagger-ui"
rm -f "$dest/LICENSE"  # the uPlot licence's old name
echo "$stamp" > "$dest/.version"
echo "install: $stamp vendored into $dest"
