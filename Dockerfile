# syntax=docker/dockerfile:1
# One image for every service of the project in docker-compose.yml: the Dagster code server, webserver
# and daemon, the run containers the daemon launches, the migrations step and the serving API. Only
# the command differs.

# The run launcher's package: `docker` (DockerRunLauncher, docker-compose.yml) or `k8s`
# (K8sRunLauncher, Dagster's Helm chart): docker build --build-arg EXTRAS=k8s .
ARG EXTRAS=docker

FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Wheels for the project and everything it needs, built apart so the final image has no build tools.
FROM base AS wheels
ARG EXTRAS
WORKDIR /src
COPY pyproject.toml README.md ./
# tvdb_images/deployment/dagster.yaml links to the embedded default instance config at the top level.
COPY dagster.yaml ./
COPY tvdb_images ./tvdb_images
COPY serving ./serving
RUN pip wheel --wheel-dir /wheels ".[${EXTRAS}]"

FROM base
ARG EXTRAS
RUN groupadd --system --gid 10001 tvdb \
    && useradd --system --uid 10001 --gid tvdb --home-dir /opt/dagster --no-create-home tvdb
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels "tvdb-images[${EXTRAS}]"

# DAGSTER_HOME holds the production instance config (dagster/dagster.yaml): PostgreSQL storage, the run
# queue and its limits, the Docker run launcher, S3 step logs. The working directory holds the
# workspace file the webserver and the daemon load (-w dagster/workspace.production.yaml).
ENV DAGSTER_HOME=/opt/dagster/dagster_home
# Dagster hands a ranged run's per-partition events to the storage in batches (one insert for the
# events a run plans, one for each step's materializations) instead of one by one: a run over 64
# partitions with nothing to do took 0.6 s instead of 1.2 s (docs/performance.md, section 3).
ENV DAGSTER_EVENT_BATCH_SIZE=1000
WORKDIR /opt/dagster/app
COPY dagster ./dagster
RUN mkdir -p "$DAGSTER_HOME" \
    && cp dagster/dagster.yaml "$DAGSTER_HOME/dagster.yaml" \
    && chown -R tvdb:tvdb /opt/dagster

USER tvdb
EXPOSE 3000 4000 8000
CMD ["tvdb-images", "serve", "--host", "0.0.0.0", "--port", "8000"]
