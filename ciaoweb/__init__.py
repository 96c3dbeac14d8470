"""ciaoweb: SR-IOV network orchestrator (controller, node agent, drivers)."""
