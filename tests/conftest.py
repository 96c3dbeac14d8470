"""Suite-wide rules.

In CI (`CIAO_REQUIRE_SIM=1`) a skipped test is a failed test: a missing prerequisite
(root, dnsmasq, PostgreSQL, Chromium...) must break the build instead of hiding.
"""

import os

import pytest

REQUIRE_ALL = os.environ.get("CIAO_REQUIRE_SIM") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_ALL and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CIAO_REQUIRE_SIM=1, which forbids skips: {reason}"


@pytest.fixture(autouse=True)
def _record_node_tasks(request, settings):
    """In-process tests have no agents: node tasks are recorded, not sent to a broker."""
    if request.node.get_closest_marker("e2e") is None:
        settings.CIAO_DISPATCH = "record"
    yield
