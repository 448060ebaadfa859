FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    QA_BIND=0.0.0.0:8000 \
    QA_SEEDS=/app/seeds \
    QA_INDEX=/app/index

WORKDIR /app
RUN useradd --create-home --uid 10001 qa

COPY pyproject.toml README.md gunicorn.conf.py ./
COPY qa_service ./qa_service
RUN pip install .

# The index is built into the image, owned by the user that serves it.
COPY seeds ./seeds
RUN mkdir -p index && qa-service index && chown -R qa:qa /app/index

USER qa
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["gunicorn", "-c", "python:qa_service.gunicorn_conf"]
