"""gunicorn's logger, with no credential in the access log whatever its format.

A client may send an API key where the service never reads one: in the query
string (`?api_key=…`), as the user or password of a URL (`http://KEY@host/`
becomes `Authorization: Basic`), in a Referer that carries either. gunicorn's
access log atoms hold all of these (`%(r)s` and `%(q)s` the query string,
`%(u)s` the Basic user, `%(f)s` the referrer, `%({name}i)s` any header,
`%({name}e)s` the WSGI environ), so they are taken out of what the atoms are
made from, not searched for in what they became: the access log has paths
without query strings, no Authorization, Proxy-Authorization or Cookie header,
and a referrer as scheme, host and path alone.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from gunicorn import glogging

# Request headers that are credentials by definition (RFC 9110 11.6, RFC 6265).
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
# Where the environ holds a URL: kept without its query string or user information.
URL_VARIABLES = ("RAW_URI", "REQUEST_URI", "HTTP_REFERER")


def without_credentials(url: str) -> str:
    """A URL (absolute or just a path) without its query string, fragment or user:password."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL at all (a made-up Referer): none of it is kept
        return "-"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class Logger(glogging.Logger):
    """gunicorn's logger; the access log's atoms are made from the request less its credentials."""

    def atoms(self, resp, req, environ, request_time):
        """gunicorn's atoms, of a request without query string, credential headers or user."""
        headers = req.headers if hasattr(req, "headers") else req
        if hasattr(headers, "items"):
            headers = headers.items()
        headers = [
            (name, without_credentials(value) if name.lower() == "referer" else value)
            for name, value in headers
            if name.lower() not in CREDENTIAL_HEADERS
        ]
        environ = {
            name: value
            for name, value in environ.items()
            if name.removeprefix("HTTP_").replace("_", "-").lower() not in CREDENTIAL_HEADERS
        }
        environ["QUERY_STRING"] = ""
        for name in URL_VARIABLES:
            if name in environ:
                environ[name] = without_credentials(environ[name])
        return super().atoms(resp, headers, environ, request_time)
