# One image for the three services: they share every dependency and all of `common/`, and
# differ only in their command (see docker-compose.yml). Three stages: the browser assets
# (the dashboard's chart library, the OpenAPI page) from the npm registry; the dependencies
# in a virtualenv; the final image with that virtualenv in one layer and the code above it,
# so that a code change rebuilds in seconds. Where no image registry answers,
# `scripts/base-images.sh` builds stand-ins for both base images from Debian packages.
#
#   docker build -t crypto-tracker .                          # the 3 services, no ccxt
#   docker build --build-arg EXTRAS=ccxt -t crypto-tracker .  # plus the ccxt:<id> sources
FROM node:20-bookworm-slim AS assets
COPY scripts/vendor-assets.sh scripts/need.sh /scripts/
RUN bash /scripts/vendor-assets.sh /assets

FROM python:3.11-slim-bookworm AS deps
ARG EXTRAS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml constraints.txt /src/
WORKDIR /src
# The project's dependencies (and EXTRAS'), read from pyproject.toml. Then what never runs
# goes: pip itself, and botocore's API models of every AWS service (~80 MB) but DynamoDB,
# its Streams and the credential services (STS, SSO).
RUN python -m venv /opt/venv \
    && python -c "import sys, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + [d for e in sys.argv[1:] for d in p['optional-dependencies'][e]]))" \
       $(echo "$EXTRAS" | tr , ' ') > requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir -q -c constraints.txt -r requirements.txt \
    && site=$(echo /opt/venv/lib/python3*/site-packages) \
    && find "$site/botocore/data" -mindepth 1 -maxdepth 1 -type d ! -name dynamodb \
         ! -name dynamodbstreams ! -name sts ! -name sso ! -name sso-oidc -exec rm -rf {} + \
    && /opt/venv/bin/pip uninstall -y -q pip setuptools \
    && echo /app > "$site/crypto-tracker.pth" \
    && printf '#!/opt/venv/bin/python\nimport sys\nfrom tracker.cli import main\nsys.exit(main())\n' \
         > /opt/venv/bin/tracker \
    && chmod 755 /opt/venv/bin/tracker

FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 10001 tracker
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TRACKER_HOST=0.0.0.0
COPY --from=deps /opt/venv /opt/venv
# The code, importable through the .pth file above (what `pip install .` would add, minus pip).
WORKDIR /app
COPY common ./common
COPY fetcher ./fetcher
COPY service ./service
COPY alerter ./alerter
COPY notifier ./notifier
COPY demo ./demo
COPY tracker ./tracker
COPY --from=assets /assets ./service/static/vendor
RUN python -m compileall -q /app && tracker --help >/dev/null

USER tracker
WORKDIR /home/tracker
EXPOSE 8080
# The service's liveness; docker-compose.yml gives the workers theirs (a heartbeat file).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["tracker", "healthcheck", "service"]
CMD ["tracker", "serve"]
