import pytest


@pytest.fixture(autouse=True)
def no_side_effects(monkeypatch):
    """No Celery dispatch and no websocket publishing from unit tests."""
    monkeypatch.setattr("ciaoweb.core.hooks._call_dispatch", lambda *args: None)
    monkeypatch.setattr("ciaoweb.events.services.notify", lambda *args: None)
