"""Who may write: the API key when one is set, else loopback clients; same-site only; JSON only."""

import json

import pytest

from autopack_site.access import KEY_NEEDED
from runs.models import PhaseIssue
from tests.conftest import plan
from tests.runs.test_bad_input import ENDPOINTS, assert_refused

pytestmark = pytest.mark.django_db

KEY = "s3cret-key-0123"
ISSUE_QUERY = "issue_key=flaky&severity=major&source=ci&category=test&evidence_refs=log%3A1&evidence_refs=log%3A2"


@pytest.fixture(autouse=True)
def run_1(settings, api):
    settings.AUTOPACK_API_KEY = ""
    return api.start(plan())


@pytest.fixture
def with_key(settings, run_1):
    settings.AUTOPACK_API_KEY = KEY


def post(client, url, body, **extra):
    return client.post(url, body, content_type="application/json", **extra)


@pytest.mark.usefixtures("with_key")
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_write_without_the_key_is_401(client, endpoint):
    url, body = ENDPOINTS[endpoint]
    response = assert_refused(lambda: post(client, url, body), 401)
    assert response["WWW-Authenticate"] == 'Bearer realm="autopack"'
    assert response.json()["error"] == KEY_NEEDED


@pytest.mark.usefixtures("with_key")
@pytest.mark.parametrize("given", ["wrong", "", KEY + "x", KEY[:-1], KEY.upper(), f"Bearer {KEY}"])
def test_write_with_a_wrong_key_is_401(client, given):
    refusal = assert_refused(lambda: post(client, "/runs/start", plan("run-2"), HTTP_X_API_KEY=given), 401)
    assert refusal.json() == {"error": "Unknown or revoked API key", "details": {}}


@pytest.mark.usefixtures("with_key")
def test_the_key_as_a_bearer_token_is_accepted(client):
    response = post(client, "/runs/start", plan("run-2"), HTTP_AUTHORIZATION=f"Bearer {KEY}")
    assert response.status_code == 201


@pytest.mark.usefixtures("with_key")
@pytest.mark.parametrize("given", [f"Basic {KEY}", KEY, "Bearer wrong", "Bearer "])
def test_other_authorization_headers_are_401(client, given):
    assert_refused(lambda: post(client, "/runs/start", plan("run-2"), HTTP_AUTHORIZATION=given), 401)


@pytest.mark.usefixtures("with_key")
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_write_with_the_right_key_is_accepted(client, endpoint):
    url, body = ENDPOINTS[endpoint]
    assert post(client, url, body, HTTP_X_API_KEY=KEY).status_code in (200, 201)


@pytest.mark.usefixtures("with_key")
def test_the_right_key_is_accepted_from_any_address(client):
    response = post(client, "/runs/start", plan("run-2"), HTTP_X_API_KEY=KEY, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 201


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_write_from_a_non_loopback_address_without_a_key_is_403(client, endpoint):
    url, body = ENDPOINTS[endpoint]
    refusal = assert_refused(lambda: post(client, url, body, REMOTE_ADDR="10.1.2.3"), 403)
    assert refusal.json()["error"] == "Writes without an API key are accepted from loopback clients only"


@pytest.mark.parametrize(
    "address",
    ["192.168.1.10", "0.0.0.0", "::", "fe80::1", "::ffff:10.1.2.3", "localhost", ""],  # noqa: S104 (data, not a bind)
)
def test_other_addresses_are_not_loopback(client, address):
    assert_refused(lambda: post(client, "/runs/start", plan("run-2"), REMOTE_ADDR=address), 403)


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_X_FORWARDED_FOR": "127.0.0.1"},
        {"HTTP_X_FORWARDED_FOR": "::1, 127.0.0.1"},
        {"HTTP_X_REAL_IP": "127.0.0.1"},
        {"HTTP_FORWARDED": "for=127.0.0.1"},
    ],
)
def test_forwarded_headers_naming_loopback_do_not_help(client, headers):
    send = lambda: post(client, "/runs/start", plan("run-2"), REMOTE_ADDR="10.1.2.3", **headers)  # noqa: E731
    assert_refused(send, 403)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"])
def test_loopback_addresses_may_write_without_a_key(client, address):
    assert post(client, "/runs/start", plan("run-2"), REMOTE_ADDR=address).status_code == 201


@pytest.mark.parametrize("endpoint", ["start", "phase_status", "record_issue", "auditor_result"])
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/octet-stream",
        "text/json",
    ],
)
def test_body_that_is_not_declared_json_is_415(client, endpoint, content_type):
    url, body = ENDPOINTS[endpoint]
    send = lambda: client.generic("POST", url, json.dumps(body), content_type=content_type)  # noqa: E731
    assert assert_refused(send, 415).json()["error"] == "Content-Type must be application/json"


def test_form_post_as_a_browser_sends_it_is_415(client):
    assert_refused(lambda: client.post("/runs/run-1/phases/P1/update_status", {"state": "EXECUTING"}), 415)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_content_type_with_parameters_or_capitals_is_accepted(client, content_type):
    response = client.generic("POST", "/runs/start", json.dumps(plan("run-2")), content_type=content_type)
    assert response.status_code == 201


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",
        "https://testserver",
        "http://testserver.evil.example",
        "http://testserver:8080",
        "",
    ],
)
def test_write_with_another_sites_origin_is_403(client, origin):
    refusal = assert_refused(lambda: post(client, "/runs/start", plan("run-2"), HTTP_ORIGIN=origin), 403)
    assert refusal.json()["error"].startswith("Cross-site request refused")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_write_refuses_a_cross_site_origin(client, endpoint):
    url, body = ENDPOINTS[endpoint]
    assert_refused(lambda: post(client, url, body, HTTP_ORIGIN="https://evil.example"), 403)


@pytest.mark.usefixtures("with_key")
def test_the_right_key_does_not_excuse_a_cross_site_origin(client):
    send = lambda: post(  # noqa: E731
        client, "/runs/start", plan("run-2"), HTTP_X_API_KEY=KEY, HTTP_ORIGIN="https://evil.example"
    )
    assert_refused(send, 403)


def test_write_from_the_servers_own_origin_is_accepted(client):
    response = post(client, "/runs/start", plan("run-2"), HTTP_ORIGIN="http://testserver")
    assert response.status_code == 201


def bodyless(client, url, **extra):
    """A POST with no body, declared JSON as every write must be (never a browser's "simple request")."""
    return client.generic("POST", url, CONTENT_TYPE="application/json", **extra)


@pytest.mark.parametrize(
    "url", [f"/runs/run-1/phases/P1/record_issue?{ISSUE_QUERY}", "/runs/run-1/phases/P1/auditor_request"]
)
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_bodyless_post_without_the_json_content_type_is_415(client, url, content_type):
    extra = {"content_type": content_type} if content_type else {}
    response = assert_refused(lambda: client.generic("POST", url, **extra), 415)
    assert response.json()["error"] == "Content-Type must be application/json"


def test_a_bodyless_post_from_htmx_needs_no_content_type(client):
    response = client.generic("POST", "/runs/run-1/phases/P1/auditor_request", HTTP_HX_REQUEST="true")
    assert response.status_code == 200, response.content


def test_record_issue_takes_query_parameters_with_no_body(client):
    response = bodyless(client, f"/runs/run-1/phases/P1/record_issue?{ISSUE_QUERY}")
    assert response.wsgi_request.body == b""
    assert response.status_code == 201, response.content
    assert response.json()["issue"]["evidence_refs"] == ["log:1", "log:2"]
    issue = PhaseIssue.objects.get(phase__run__run_id="run-1", phase__phase_id="P1")
    assert (issue.issue_key, issue.severity, issue.source, issue.category) == ("flaky", "major", "ci", "test")
    assert issue.evidence_refs == ["log:1", "log:2"]


def test_record_issue_by_query_parameters_twice_counts_one_issue(client):
    bodyless(client, f"/runs/run-1/phases/P1/record_issue?{ISSUE_QUERY}")
    response = bodyless(
        client, "/runs/run-1/phases/P1/record_issue?issue_key=flaky&severity=major&evidence_refs=log%3A3"
    )
    assert response.status_code == 200
    issue = response.json()["issue"]
    assert issue["occurrences"] == 2
    assert issue["evidence_refs"] == ["log:1", "log:2", "log:3"]
    assert response.json()["phase"]["major_issues_count"] == 1


def test_record_issue_by_query_parameters_checks_them(client):
    send = lambda: bodyless(client, "/runs/run-1/phases/P1/record_issue?issue_key=flaky&severity=blocker")  # noqa: E731
    assert assert_refused(send, 400).json()["details"] == {"severity": "must be one of: minor, major"}


def test_record_issue_by_query_parameters_is_still_write_protected(client, settings):
    url = f"/runs/run-1/phases/P1/record_issue?{ISSUE_QUERY}"
    assert_refused(lambda: bodyless(client, url, REMOTE_ADDR="10.1.2.3"), 403)
    settings.AUTOPACK_API_KEY = KEY
    assert_refused(lambda: bodyless(client, url), 401)
    assert bodyless(client, url, HTTP_X_API_KEY=KEY).status_code == 201


@pytest.mark.usefixtures("with_key")
@pytest.mark.parametrize("url", ["/runs/", "/runs/run-1", "/dashboard/runs/run-1/status", "/api/openapi.json", "/docs"])
def test_reads_need_no_key_from_any_address_or_origin(client, url):
    response = client.get(url, REMOTE_ADDR="10.1.2.3", HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 200


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_write_from_another_site_is_refused_even_without_origin(client, endpoint, site):
    url, body = ENDPOINTS[endpoint]
    response = assert_refused(lambda: post(client, url, body, HTTP_SEC_FETCH_SITE=site), 403)
    assert response.json()["error"] == f"Request from another site refused (Sec-Fetch-Site: {site})"


@pytest.mark.parametrize(
    ("origin", "accepted"), [("http://dash.example:8000", True), ("http://other.example:8000", False)]
)
def test_a_same_site_dashboard_change_needs_a_trusted_origin(client, settings, origin, accepted):
    settings.AUTOPACK_TRUSTED_ORIGINS = ["http://dash.example:8000"]
    response = client.post(
        "/dashboard/forms/note",
        {"note": "use the session middleware"},
        HTTP_HX_REQUEST="true",
        HTTP_ORIGIN=origin,
        HTTP_SEC_FETCH_SITE="same-site",
    )
    assert response.status_code == 200 and response.has_header("X-Refused") is not accepted


@pytest.mark.parametrize("site", ["same-origin", "none"])
def test_same_origin_and_typed_requests_pass(client, site):
    response = post(client, "/runs/run-1/phases/P1/update_status", {"state": "EXECUTING"}, HTTP_SEC_FETCH_SITE=site)
    assert response.status_code == 200
