"""The topology stays compact: a PF's VFs are a grid of small cells, CELLS_PER_ROW to a
row (the page height at 16 hosts x 64 VFs is measured in Chromium by
tests/browser/test_dashboard_fixes.py)."""

import re

import pytest

from ciaoweb.dashboard.topology import CELL, CELL_GAP, CELLS_PER_ROW
from ciaoweb.inventory.services import register_inventory
from tests.api.helpers import inventory

pytestmark = pytest.mark.django_db


def svg(pages) -> str:
    return pages.admin_page.get("/topology/", {"fragment": "svg"}).content.decode()


def height(body: str) -> int:
    return int(re.search(r'<svg[^>]* height="(\d+)"', body).group(1))


def cell_rows(body: str, pf_id) -> int:
    group = body.split(f'data-pf-id="{pf_id}"')[1].split("data-pf-id=")[0]  # to the next PF
    return len(set(re.findall(r'<rect x="\d+" y="(\d+)" width="10"', group)))


def test_sixty_four_vfs_are_one_cell_row_more_than_four(pages):
    host = register_inventory("rack01", inventory("rack01", {"physnet1": 4}))
    pf = host.pfs.get()
    small = svg(pages)
    register_inventory("rack01", inventory("rack01", {"physnet1": 64}))
    large = svg(pages)
    assert cell_rows(small, pf.pk) == 1 and cell_rows(large, pf.pk) == 64 // CELLS_PER_ROW
    assert height(large) - height(small) == CELL + CELL_GAP


def test_a_cell_says_what_it_holds_and_links_to_its_instance(pages):
    vf = pages.inst_a.attachments.get(network=pages.net_a).vf
    body = svg(pages)
    cell = body.split(f'data-vf-id="{vf.pk}"')[1].split("</g>")[0]
    assert "tenant-a/web-a eth1" in cell and vf.pci_address in cell
    before = body.split(f'data-vf-id="{vf.pk}"')[0]
    assert before.endswith(f'<a href="/instances/{pages.inst_a.pk}/"><g class="vf vf-{vf.state}" ')
    held = re.findall(r"ens0 · physnet1 · [0-9a-f:.]+ · (\d+) of 4 VFs held", body)
    assert len(held) == 2 and sum(map(int, held)) == 2  # web-a and web-b, on node1 or node2
