"""The broker's ACL rules as text (ciaoweb.core.broker_acl); tests/security/
test_broker_auth.py checks what they allow on a real Redis."""

from __future__ import annotations

import hashlib

import pytest

from ciaoweb.core.broker_acl import (
    agent_rule,
    agent_transport_options,
    check_host_name,
    render_acl_file,
)


def test_the_file_holds_hashes_and_turns_the_default_user_off():
    text = render_acl_file("web-pw", "ctl-pw", {"node2": "n2-pw", "node1": "n1-pw"})
    lines = text.splitlines()
    assert lines[0] == "user default off resetkeys resetchannels -@all"
    assert [line.split()[1] for line in lines] == [
        "default",
        "web",
        "controller",
        "agent-node1",
        "agent-node2",
    ]
    for password in ("web-pw", "ctl-pw", "n1-pw", "n2-pw"):
        assert password not in text
        assert "#" + hashlib.sha256(password.encode()).hexdigest() in text
    assert "ciao-admin" not in text
    assert "user ciao-admin on #" in render_acl_file("a", "b", {}, admin_password="c")


def test_an_agent_rule_names_its_own_keys_exactly():
    rule = agent_rule("node1", "pw")
    keys = [word.strip("()") for word in rule.split() if "~" in word]
    assert keys == [
        "%W~controller",
        "~node.node1",
        "~_kombu.binding.node.node1",
        "~unacked.node.node1",
        "~unacked_index.node.node1",
        "~unacked_mutex.node.node1",
        "%W~ciao.alive.node1",
    ]
    assert "&" not in rule  # no Pub/Sub channel
    assert "+@" not in rule  # no command category, only named commands


def test_the_agent_transport_options_match_its_rule():
    options = agent_transport_options("node1", {"visibility_timeout": 120})
    assert options["visibility_timeout"] == 120
    rule = agent_rule("node1", "pw")
    for name in ("unacked_key", "unacked_index_key", "unacked_mutex_key"):
        assert f"~{options[name]})" in rule or f"~{options[name]} " in rule


@pytest.mark.parametrize("bad", ["", "node*", "node 1", "Node1", "a" * 64, "-x", "x)", 'x"'])
def test_a_host_name_that_could_widen_a_rule_is_refused(bad):
    with pytest.raises(ValueError):
        check_host_name(bad)
    with pytest.raises(ValueError):
        agent_rule(bad, "pw")
