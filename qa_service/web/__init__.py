"""The HTTP side, and the only package that imports Flask: the JSON API, the pages,
health, metrics and the gunicorn set-up."""
