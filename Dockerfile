# qa_service: citation-backed question answering over a folder of articles.
#
#   docker build -t qa-service .
#   docker run --rm -p 8000:8000 qa-service
#
# The base is a tag, not a digest, so that a build resolves wherever the tag
# does; pin it for production with --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:….
ARG PYTHON_IMAGE=python:3.11-slim

# --- build: the dependencies, then the package, into one virtualenv ----------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Exactly the locked versions, each checked against its hash (make lock writes
# the file). In a layer of its own: a change to the code does not reinstall them.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-deps --require-hashes -r /tmp/requirements.lock
COPY pyproject.toml README.md /src/
COPY qa_service /src/qa_service
RUN pip install --no-deps /src && rm -rf /src

# --- runtime ------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="qa-service" \
      org.opencontainers.image.description="Citation-backed question answering over a folder of text articles" \
      org.opencontainers.image.version="0.1.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    QA_BIND=0.0.0.0:8000 \
    QA_SEEDS=/app/seeds \
    QA_INDEX=/app/index

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY seeds ./seeds
COPY docker-entrypoint.sh /usr/local/bin/qa-service-start
# The index of the seeds is built into the image. Owned by group 0 and as
# writable for it as for its owner: OpenShift and `--user <uid>:0` run the
# image as an arbitrary user of group 0, which must read and rebuild it.
RUN qa-service index \
 && chgrp -R 0 /app && chmod -R g=u /app \
 && chmod 0755 /usr/local/bin/qa-service-start

# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 10001:0
EXPOSE 8000
# Ready, not merely alive: /readyz is 503 while the index cannot be served.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
CMD ["qa-service-start"]
