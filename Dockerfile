# One image for the three services: they share every dependency and all of `common/`, and
# differ only in their command (see docker-compose.yml). Two stages: wheels are built with
# the compiler in the first, and only installed packages reach the final image. The
# dashboard's chart library is vendored from the npm registry in a stage of its own.
FROM node:20-bookworm-slim AS assets
COPY scripts/vendor-assets.sh /vendor-assets.sh
RUN bash /vendor-assets.sh /assets

FROM python:3.11-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY common ./common
COPY fetcher ./fetcher
COPY service ./service
COPY --from=assets /assets ./service/static/vendor
COPY alerter ./alerter
COPY demo ./demo
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt ".[ccxt]"

FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 10001 tracker
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TRACKER_HOST=0.0.0.0
USER tracker
WORKDIR /home/tracker
EXPOSE 8080
# The service's liveness; compose overrides or disables it for the workers.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"
CMD ["tracker", "serve"]
