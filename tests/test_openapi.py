"""The OpenAPI document and /docs describe every JSON route, and only those."""

import json
import re

import pytest
from django.urls import URLResolver, get_resolver

ERROR_REF = {"$ref": "#/components/schemas/Error"}


def json_routes(patterns=None, prefix=""):
    """(route, view) of every view wrapped by `autopack_site.api.api_view`, through included URLconfs."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from json_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif getattr(pattern.callback, "json_api", False):
            yield prefix + str(pattern.pattern), pattern.callback


def openapi_path(route: str) -> str:
    """`runs/<str:run_id>/update_status` as OpenAPI writes it: `/runs/{run_id}/update_status`."""
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


@pytest.fixture
def spec(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content, parse_constant=_refuse_constant)


def operations(spec):
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_the_route_walk_finds_the_run_api():
    paths = {openapi_path(route) for route, _ in json_routes()}
    assert {"/runs/start", "/runs/{run_id}/phases/{phase_id}/update_status", "/runs/"} <= paths


def test_document_is_openapi_3_1(spec):
    assert re.fullmatch(r"3\.1\.\d+", spec["openapi"])
    assert spec["info"]["title"] and spec["info"]["version"]
    assert spec["paths"]


def test_every_json_route_is_documented(spec):
    missing = {openapi_path(route) for route, _ in json_routes()} - set(spec["paths"])
    assert not missing


def test_every_documented_path_is_a_json_route(spec):
    stale = set(spec["paths"]) - {openapi_path(route) for route, _ in json_routes()}
    assert not stale


def test_documented_path_parameters_are_the_routes(spec):
    for path, method, operation in operations(spec):
        documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert documented == set(re.findall(r"{(\w+)}", path)), (method, path)
        assert all(p["required"] for p in operation.get("parameters", []) if p["in"] == "path")


def test_documented_methods_are_those_the_views_take(client, spec):
    for route, _ in json_routes():
        path = openapi_path(route)
        # A method no view takes: the 405 names the ones it does.
        response = client.options("/" + re.sub(r"<(?:\w+:)?(\w+)>", "x", route))
        assert response.status_code == 405, path
        assert set(response["Allow"].split(", ")) == {m.upper() for m in spec["paths"][path]}, path


def test_every_documented_error_response_is_the_error_schema(spec):
    error = spec["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error", "details"}
    assert error["properties"]["details"]["additionalProperties"] == {"type": "string"}
    for path, method, operation in operations(spec):
        errors = {code: r for code, r in operation["responses"].items() if int(code) >= 400}
        assert errors, (method, path)
        for code, response in errors.items():
            assert response["content"] == {"application/json": {"schema": ERROR_REF}}, (method, path, code)


def test_every_write_documents_the_write_refusals(spec):
    for path, method, operation in operations(spec):
        if method == "post":
            assert {"400", "401", "403", "405", "413", "415"} <= set(operation["responses"]), path


def test_every_reference_resolves(spec):
    text = json.dumps(spec)
    for ref in set(re.findall(r'"\$ref": "([^"]+)"', text)):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in spec["components"]["schemas"], ref


def test_operation_ids_are_unique(spec):
    ids = [operation["operationId"] for _, _, operation in operations(spec)]
    assert len(ids) == len(set(ids))


def test_docs_page_lists_every_operation(client, spec):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    for path, method, operation in operations(spec):
        assert f'<span class="method">{method.upper()}</span><code>{path}</code>' in html, path
        assert f'id="{operation["operationId"]}"' in html, path
    for route, _ in json_routes():
        assert f"<code>{openapi_path(route)}</code>" in html
