"""`ciao`, the operator CLI (DESIGN.md §3a): the REST API and the live event stream from a
shell, with tables or JSON, meaningful exit codes and shell completion.

It runs where the web stack is not installed (operators' machines, compute nodes): only
the standard library, click, httpx, websockets and PyYAML, never Django. Modules:
`errors` (exit codes), `config` (the config file, where URL and token come from),
`client` (HTTP with error handling and pagination), `resources` (what each resource
lists and how names resolve), `output` (tables, JSON, YAML), `state` (per-invocation
options and the client), `reads` (every `list`/`show`), one module per group of writes
(`networks`, `instances`, `hosts`, `tenants`), `waiting`, `watch`, `auth`, and `main`.
"""

import sys

# httpx imports its own command-line client (rich, pygments) whenever those happen to be
# installed: a third of `ciao`'s start-up, paid again at every TAB of shell completion.
# `ciao` never uses it; without the module httpx defines a stub instead.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)
