#!/bin/sh
# Start the service in a container: index the articles folder when it changed
# (nothing is written when it did not), then hand PID 1 to gunicorn.
set -u
if ! qa-service index; then
    echo "qa-service-start: could not index $QA_SEEDS into $QA_INDEX; serving the index already there" >&2
fi
exec gunicorn -c python:qa_service.gunicorn_conf "$@"
