# Redis (the broker) from Debian's package, so a deployment needs no image but its base.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* && mkdir -p /data
EXPOSE 6379
# A password always (the port is published for submitters and remote workers); data in /data.
CMD ["sh", "-c", "exec redis-server --bind 0.0.0.0 --port 6379 --dir /data --appendonly yes --requirepass \"${REDIS_PASSWORD:?set REDIS_PASSWORD}\""]
