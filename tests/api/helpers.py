"""Helpers shared by the API tests."""

from rest_framework.test import APIClient

from ciaoweb.taskrouting import AGENT_FEATURES

API = "/api/v1/"


def inventory(host: str, physnets: dict[str, int]) -> dict:
    """A current agent's report: one PF per physnet with the given number of VFs."""
    pfs = []
    for number, (physnet, vfs) in enumerate(sorted(physnets.items())):
        pfs.append(
            {
                "name": f"ens{number}",
                "pci_address": f"0000:0{number}:00.0",
                "physnet": physnet,
                "total_vfs": max(vfs, 1) * 2,
                "num_vfs": vfs,
                "vfs": [
                    {
                        "index": i,
                        "pci_address": f"0000:0{number}:00.{i + 1}",
                        "netdev": f"ens{number}v{i}",
                        "mac": "",
                        "vlan": None,
                    }
                    for i in range(vfs)
                ],
            }
        )
    return {"host": host, "is_network_node": False, "features": list(AGENT_FEATURES), "pfs": pfs}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def url(path: str, obj=None, action: str | None = None) -> str:
    """`url("networks")`, `url("networks", net)`, `url("instances", inst, "migrate")`."""
    text = f"{API}{path}/"
    if obj is not None:
        text += f"{getattr(obj, 'pk', obj)}/"
    if action:
        text += f"{action}/"
    return text
