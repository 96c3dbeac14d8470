from ciaoweb.agent.generations import GenerationLog


def test_older_specs_are_refused_after_a_newer_one(tmp_path):
    log = GenerationLog(tmp_path)
    assert log.admit("i1", 1)
    assert log.admit("i1", 1)  # the same spec again (redelivery before anything newer)
    assert log.admit("i1", 3)
    assert not log.admit("i1", 2)  # late redelivery of an older desired state
    assert GenerationLog(tmp_path).admit("i2", 1)  # survives a restart, per instance
    assert not GenerationLog(tmp_path).admit("i1", 1)
