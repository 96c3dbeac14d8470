import pytest


@pytest.fixture(autouse=True)
def no_side_effects(monkeypatch):
    """Nothing queued for the controller's worker and no websocket publishing from unit tests."""
    monkeypatch.setattr("ciaoweb.operations.queue.enqueue", lambda *args: None)
    monkeypatch.setattr("ciaoweb.events.services.notify", lambda *args: None)
