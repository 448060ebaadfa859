#!/bin/sh
# The image's command: index the articles folder when it changed (nothing is
# written when it did not), then become gunicorn, which handles SIGTERM as PID 1.
# Arguments are passed to gunicorn (`qa-service-start --workers 2`).
set -u

# What a build at start writes is group-writable, so that any other user of
# group 0 (OpenShift, `--user <uid>:0`) can rebuild it later.
umask 0002

# The build runs in the background so that a stop during a long one is prompt:
# PID 1 ignores a signal it has no handler for.
qa-service index &
indexer=$!
trap 'kill -TERM "$indexer" 2>/dev/null; wait "$indexer"; exit 143' TERM INT
if ! wait "$indexer"; then
    echo "qa-service-start: could not index $QA_SEEDS into $QA_INDEX (see above);" \
        "serving the index already in $QA_INDEX, if any" >&2
fi
trap - TERM INT
exec gunicorn -c python:qa_service.web.gunicorn_conf "$@"
