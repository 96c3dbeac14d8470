"""JSON for our hook scripts, without the json package (it imports `re`: 10 ms of CPU of
each hook run, and the hooks run three times for every container lease).

The hooks are single files run with `python -IS`, so `install_hook` copies this module
into each of them in place of its `from .hook_json import to_json` line.
"""

from _json import encode_basestring_ascii as _quote


def to_json(value: object) -> str:
    """json.dumps(value, sort_keys=True) for None, numbers, str, lists and dicts of them."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(to_json, value)) + "]"
    return "{" + ", ".join(f"{_quote(k)}: {to_json(value[k])}" for k in sorted(value)) + "}"
