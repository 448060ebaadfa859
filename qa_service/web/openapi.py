"""The OpenAPI document, generated from the marshmallow schemas and the routes."""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec_webframeworks.flask import FlaskPlugin
from flask import Blueprint, current_app

blueprint = Blueprint("openapi", __name__)


def document(**operations):
    """Attach OpenAPI operations (by HTTP method) to a view function."""

    def attach(view):
        view.openapi_operations = operations
        return view

    return attach


def json_content(schema, description: str = "OK") -> dict:
    """An OpenAPI response (or request body) object holding JSON of `schema`."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def media_content(media_type: str, description: str) -> dict:
    """An OpenAPI response object of a media type the schemas do not describe (HTML, text)."""
    return {"description": description, "content": {media_type: {}}}


def build_spec(app) -> APISpec:
    """An OpenAPI 3 document covering every documented route of `app`."""
    spec = APISpec(
        title="qa_service",
        version="1",
        openapi_version="3.0.3",
        info={"description": "Citation-backed answers from a folder of articles."},
        plugins=[FlaskPlugin(), MarshmallowPlugin()],
    )
    # Writes (and, with QA_READ_NEEDS_KEY, reads) take an API key as a bearer token.
    spec.components.security_scheme("apiKey", {"type": "http", "scheme": "bearer"})
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        view = app.view_functions[rule.endpoint]
        operations = getattr(view, "openapi_operations", None)
        if operations:
            path_parameters = [
                {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
                for name in sorted(rule.arguments)
            ]
            spec.path(view=view, operations=operations, parameters=path_parameters, app=app)
    return spec


@blueprint.route("/openapi.json")
@document(
    get={
        "summary": "This OpenAPI document",
        "responses": {"200": media_content("application/json", "OpenAPI 3 document")},
    }
)
def openapi_json():
    """The OpenAPI document as JSON."""
    spec = current_app.extensions.get("qa_openapi")
    if spec is None:
        spec = current_app.extensions["qa_openapi"] = build_spec(current_app).to_dict()
    return spec
