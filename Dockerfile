# qa_service: citation-backed question answering over a folder of articles.
#
#   docker build -t qa-service .
#   docker run --rm -p 8000:8000 qa-service
#
# The Docker section of docs/deployment.md says how to serve your own articles, keep the
# index on a volume and run with a read-only root.
#
# The base is named by tag, not digest, so that the build works wherever that
# tag resolves (a registry mirror, a locally built stand-in). Pin it for
# production with --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:…. Labels:
# --build-arg SOURCE=<repository URL> --build-arg REVISION=$(git rev-parse HEAD).
ARG PYTHON_IMAGE=python:3.11-slim

# --- deps: the locked dependencies, in a virtualenv ---------------------------
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Exactly the versions of requirements.lock, build backend included, each
# checked against its hash (`make lock` rewrites the file from pyproject.toml).
# Only the lock file is copied before this step, so a code change reuses it.
# The .pth file puts the package (installed beside the venv, below) on the path.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-deps --require-hashes -r /tmp/requirements.lock \
 && rm /tmp/requirements.lock \
 && echo /opt/app >"$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/qa-service.pth"

# --- build: the package on its own, in /opt/app --------------------------------
FROM deps AS build
COPY pyproject.toml README.md /src/
COPY qa_service /src/qa_service
# Built by the locked setuptools: no build isolation, so nothing is fetched here.
RUN pip install --no-deps --no-build-isolation --target /opt/app /src

# --- runtime ------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
# ORT_DISABLE_TELEMETRY: onnxruntime would otherwise send usage events to
# Microsoft and write a device id under $HOME.
ENV PATH=/opt/app/bin:/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ORT_DISABLE_TELEMETRY=1 \
    QA_BIND=0.0.0.0:8000 \
    QA_SEEDS=/app/seeds \
    QA_INDEX=/app/index

# Dependencies and package in separate layers: a new version of the code is a
# layer of the package's size (the model makes most of it), not of every wheel.
COPY --from=deps /opt/venv /opt/venv
COPY --from=build /opt/app /opt/app
COPY docker-entrypoint.sh /usr/local/bin/qa-service-start
WORKDIR /app
COPY seeds ./seeds
# The index of the seeds is built into the image, owned by the image's user and
# by group 0 with the owner's permissions: OpenShift and `--user <uid>:0` run
# the image as an arbitrary user of group 0, which must read and rebuild it.
# Nothing else is writable.
RUN qa-service index \
 && chown -R 10001:0 /app/index \
 && chmod -R g=u /app/index \
 && chmod 0755 /usr/local/bin/qa-service-start

# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 10001:0
EXPOSE 8000
# Ready, not merely alive: /readyz is 503 while the index cannot be served. The
# start period covers indexing mounted articles at start (about 1 s per 100 passages).
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
# The start script is the command, so `docker run IMAGE <command>` runs that instead.
CMD ["qa-service-start"]

# Last, so that a new revision relabels the image without rebuilding its index.
# The project has not declared a license yet: NOASSERTION says so.
ARG PYTHON_IMAGE
ARG SOURCE=""
ARG REVISION=""
LABEL org.opencontainers.image.title="qa-service" \
      org.opencontainers.image.description="Citation-backed question answering over a folder of text articles" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="NOASSERTION" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
