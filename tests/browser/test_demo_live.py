import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from runs.models import Run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("width", [1280, 400])
def test_demo_data_is_removed_in_two_steps_without_a_dialog(page, live_server, models_config, width):
    call_command("demo")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{live_server.url}/dashboard/")
    banner = page.locator(".demo-banner")
    expect(banner).to_contain_text("count in no quota")
    page.get_by_text("Remove demo data…").click()
    page.get_by_role("button", name="Remove demo data").click()
    expect(page.locator(".demo-banner")).to_have_count(0, timeout=10_000)
    assert not Run.objects.filter(is_demo=True).exists()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.js_errors == []
