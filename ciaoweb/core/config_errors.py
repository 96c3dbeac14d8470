"""One short phrase per pydantic error, for the configuration messages of the node agent
(ciaoweb.agent.config) and of the controller's environment (ciaoweb.core.envconfig).

pydantic says "Input should be a valid integer, unable to parse string as an integer";
an operator reads "is not an integer". No Django here: the agent imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_PHRASES = {
    "int_parsing": "is not an integer",
    "int_type": "is not an integer",
    "int_from_float": "is not an integer",
    "float_parsing": "is not a number",
    "float_type": "is not a number",
    "finite_number": "is not a finite number",
    "bool_parsing": "is not a boolean (true or false)",
    "bool_type": "is not a boolean (true or false)",
    "string_type": "is not a string",
    "list_type": "is not a list",
    "dict_type": "is not a mapping",
    "string_too_short": "must not be empty",
    "missing": "is required",
    "extra_forbidden": "is not a known key",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "must be at least {}"),
    "greater_than": ("gt", "must be more than {}"),
    "less_than_equal": ("le", "must be at most {}"),
    "less_than": ("lt", "must be less than {}"),
}


def is_own(error: Mapping[str, Any]) -> bool:
    """A message our own validator wrote (it quotes the value itself)."""
    return error["type"] == "value_error"


def reason(error: Mapping[str, Any]) -> str:
    """The error as a phrase about the value: "is not an integer", "must be at least 1",
    or our own validator's message."""
    kind, message = error["type"], str(error["msg"])
    if is_own(error):
        return message.removeprefix("Value error, ")
    if kind in _PHRASES:
        return _PHRASES[kind]
    if kind in _BOUNDS:
        key, phrase = _BOUNDS[kind]
        return phrase.format((error.get("ctx") or {}).get(key))
    if kind == "literal_error":
        return f"must be {(error.get('ctx') or {}).get('expected')}"
    return message.replace("Input should be", "must be", 1)
