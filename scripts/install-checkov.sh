#!/usr/bin/env bash
# checkov, the static security scan of deploy/aws/tracker.yaml, in a virtualenv of its own:
# it pins an older boto3 than aioboto3 needs, so it cannot share the project's. Idempotent.
set -euo pipefail
version="${CHECKOV_VERSION:-3.3.30}"
dest="${1:-.cache/tools/checkov}"
python="${PYTHON:-python3}"

if [ -x "$dest/bin/checkov" ] && [ "$(cat "$dest/.version" 2>/dev/null)" = "$version" ]; then
  exit 0
fi
echo "install: checkov $version into $dest (its own virtualenv)"
rm -rf "$dest"
"$python" -m venv "$dest"
"$dest/bin/python" -m pip install -q --disable-pip-version-check "checkov==$version"
"$dest/bin/checkov" --version >/dev/null
echo "$version" > "$dest/.version"
