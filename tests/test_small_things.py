import re
from pathlib import Path

from django.http import HttpResponse
from django.template.loader import render_to_string

from autopack_site.middleware import ContentSecurityPolicyMiddleware

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted(p for folder in (ROOT / "templates", *ROOT.glob("*/templates")) for p in folder.rglob("*.html"))


def test_a_bar_clamps_its_fill_and_speaks_its_value_and_a_bad_level():
    html = render_to_string(
        "bar.html",
        {"label": "Tokens", "percent": 104.2, "level": "exceeded", "done": 5210, "of": 5000, "unit": "tokens"},
    )
    assert 'class="bar-fill level-exceeded" width="100.0"' in html
    assert 'role="progressbar" aria-label="Tokens" aria-valuemin="0" aria-valuemax="100" aria-valuenow="104.2"' in html
    assert 'aria-valuetext="5210 of 5000 tokens, 104.2%, exceeded"' in html


def test_a_bar_names_no_level_when_all_is_well_and_speaks_only_its_value_without_a_unit():
    ok = render_to_string(
        "bar.html", {"label": "T", "percent": 10.0, "level": "ok", "done": 1, "of": 10, "unit": "tokens"}
    )
    assert 'aria-valuetext="1 of 10 tokens, 10.0%"' in ok
    plain = render_to_string("bar.html", {"label": "Progress of <r>", "percent": 25.0, "level": "progress"})
    assert "aria-valuetext" not in plain and 'aria-label="Progress of &lt;r&gt;"' in plain
    assert 'class="bar-fill level-progress" width="25.0"' in plain


def test_the_bar_is_written_once():
    assert [p.name for p in TEMPLATES if 'viewBox="0 0 100 10"' in p.read_text()] == ["bar.html"]


def test_every_endpartialdef_names_its_partial():
    unnamed = re.compile(r"{%\s*endpartialdef\s*%}")
    assert len(TEMPLATES) > 5
    assert [str(p.relative_to(ROOT)) for p in TEMPLATES if unnamed.search(p.read_text())] == []


def test_the_admin_policy_replaces_only_frame_ancestors_whatever_the_middleware_order(rf):
    middleware = ContentSecurityPolicyMiddleware(lambda request: HttpResponse("ok"))
    admin = middleware(rf.get("/admin/login/"))["Content-Security-Policy"]
    dashboard = middleware(rf.get("/dashboard/"))["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in admin and "vscode-webview:" not in admin
    assert "default-src 'self'" in admin and "object-src 'none'" in admin
    assert "vscode-webview:" in re.search(r"frame-ancestors ([^;]+)", dashboard).group(1)


def test_the_admin_stays_unframeable_when_the_ancestors_are_configured(client, settings):
    settings.CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {**settings.CONTENT_SECURITY_POLICY["DIRECTIVES"], "frame-ancestors": ["https://ide.example"]}
    }
    response = client.get("/admin/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert "ide.example" not in response["Content-Security-Policy"]
