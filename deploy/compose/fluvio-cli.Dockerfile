# The Fluvio CLI, for registering the SPU with the SC in docker-compose.yml (the server image
# holds only fluvio-run). Installed with Fluvio's own installer.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && curl -fsS https://hub.infinyon.cloud/install/install.sh | bash
ENV PATH="/root/.fluvio/bin:/root/.fvm/bin:${PATH}"
