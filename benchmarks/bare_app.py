"""The baseline of benchmarks/load.py: a Flask app that answers /healthz and nothing else."""

from flask import Flask

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    """What the service's own /healthz says, with none of its logging or metrics."""
    return {"status": "ok"}
