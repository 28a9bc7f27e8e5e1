"""The database stopped under load and started again: 503s meanwhile, then the same workers answer, and
every event is counted everywhere or nowhere."""

import pytest
from cluster import ClusterUnavailable, check_available
from restart import run_with_restart

pytestmark = pytest.mark.postgres_only

SECONDS, DOWN_FOR = 10, 3


@pytest.fixture
def can_make_a_cluster():
    try:
        check_available()
    except ClusterUnavailable as exc:
        pytest.skip(f"needs a throwaway PostgreSQL cluster: {exc}")


@pytest.mark.usefixtures("can_make_a_cluster")
def test_a_restart_under_load_is_503s_then_recovery_with_nothing_half_written():
    result = run_with_restart(seconds=SECONDS, down_for=DOWN_FOR)
    restart = result["restart"]
    assert restart["problems"] == []
    assert result["mismatches"] == []
    assert restart["replies_while_down"].get("503", 0) > 0
    assert restart["healthz_while_down"].keys() == {"503"}
    assert restart["healthz_back_s"] < 2 and restart["api_back_s"] < 2
    assert restart["workers"] == 2 and restart["workers_same"] and restart["worker_timeouts"] == 0
    # Events cut off by the stop are stored whole or not at all; every one answered as recorded is stored.
    assert result["counted"] == result["accepted"] + result["unknown_stored"]
    assert result["unknown"] > 0
