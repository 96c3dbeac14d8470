"""Health, readiness and metrics of the controller (docs/operations.md).

- `health`: the readiness checks (database, broker), each bounded by a short timeout;
- `metrics`: the process' private Prometheus registry, request latency (observed by
  `middleware`, per process) and the exposition;
- `collectors`: the cluster's state (instances, VFs, operations, leases, hosts, DHCP
  servers), counted by the database at scrape time;
- `views` / `urls`: `/healthz`, `/readyz`, `/metrics`.

No models: everything shown is the other apps' rows, counted by the database. The node
agents' own metrics are theirs to serve (ciaoweb.agent.metrics).
"""
