# The farm's worker image: Python, git, bubblewrap, uv and this project. Flower and the
# queue-depth exporter run from it too. Build context: the repository root.
#
#   podman build -f deploy/compose/worker.Dockerfile -t cooperbench-farm-worker .
#
# BASE_IMAGE: any Debian bookworm image with python3 (>= 3.11) and python3-venv; the default
# is the public python image. Behind a registry-less firewall, pass a local one.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends git bubblewrap ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

# The dependencies first (a layer kept while only the source changes), then the project.
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -q uv
ENV PATH=/opt/venv/bin:$PATH VIRTUAL_ENV=/opt/venv
COPY pyproject.toml /opt/cooperbench/pyproject.toml
# pytest: the test tool of the bundled dataset's runners (they call `python -m pytest`)
RUN uv pip install -q -r /opt/cooperbench/pyproject.toml pytest
COPY README.md celeryconfig.py /opt/cooperbench/
COPY cooperbench /opt/cooperbench/cooperbench
RUN uv pip install -q --no-deps /opt/cooperbench

COPY deploy/compose/farm-entrypoint.sh /usr/local/bin/farm-entrypoint
WORKDIR /var/lib/cooperbench
ENV COOPERBENCH_CACHE=/var/lib/cooperbench/cache \
    COOPERBENCH_LOGS=/data/cooperbench/logs \
    COOPERBENCH_DATASET=/data/cooperbench/dataset
ENTRYPOINT ["farm-entrypoint"]
CMD ["worker"]
