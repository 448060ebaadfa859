"""The floor of benchmarks/load.py: what answering costs at the least, by design.

Every answer encodes its question with the project's own encoder; this app does
that and nothing else: POST /api/v1/ask reads the service's JSON body, makes the
model calls an ask makes for that question (today one: the question's encoding,
by the encoder the index generation ships with) and answers a small JSON
object. Served by gunicorn with the bench's settings, its requests/s is what
the service's ask is measured against.
"""

from flask import Flask, request

from qa_service.retrieval.semantic import MODEL_DIR, SentenceEncoder

app = Flask(__name__)
# Loaded once per worker, as the service's generation loads its encoder.
_encoder = SentenceEncoder(MODEL_DIR)


@app.post("/api/v1/ask")
def ask():
    """Encode the question, as the service does for every answer; nothing else."""
    question = request.get_json()["question"]
    vector = _encoder.encode([question])[0]
    return {"question": question, "norm": round(float(vector @ vector), 3)}


@app.get("/healthz")
def healthz():
    """Ready once a worker has loaded the encoder (gunicorn_server waits on it)."""
    return {"status": "ok"}
