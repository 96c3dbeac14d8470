"""One way to page a dashboard list: `paginate(request, rows)` in the view and
`{% include "dashboard/partials/pager.html" %}` in the template.

A live page re-renders its pager with the list (fragment "pager"), so its counts follow.
The links keep the page's other query parameters (filters, `per_page`) and drop only the
page number and a live refresh's `fragment`. Like the REST API's pagination, a page or a
`per_page` that is not a number falls back to the default (a page past the end shows the
last one) instead of failing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, QueryDict

PER_PAGE = 50
MAX_PER_PAGE = 500
PAGE_PARAM, PER_PAGE_PARAM = "page", "per_page"


@dataclass(frozen=True)
class Pager:
    page: Page
    query: QueryDict  # the page's other parameters, kept by every link
    noun: str = "rows"  # what the list holds, for "1–50 of 120 instances"

    def url(self, number: int) -> str:
        query = self.query.copy()
        query[PAGE_PARAM] = str(number)
        return f"?{query.urlencode()}"

    @property
    def first_url(self) -> str:
        return self.url(1)

    @property
    def previous_url(self) -> str:
        return self.url(self.page.previous_page_number()) if self.page.has_previous() else ""

    @property
    def next_url(self) -> str:
        return self.url(self.page.next_page_number()) if self.page.has_next() else ""

    @property
    def last_url(self) -> str:
        return self.url(self.page.paginator.num_pages)


def per_page(request: HttpRequest, default: int = PER_PAGE) -> int:
    """`?per_page=` if it is a number (at most MAX_PER_PAGE), else `default`."""
    try:
        wanted = int(request.GET.get(PER_PAGE_PARAM, ""))
    except ValueError:
        return default
    return min(max(wanted, 1), MAX_PER_PAGE)


def paginate(
    request: HttpRequest,
    rows: QuerySet | Sequence,
    noun: str,
    default_per_page: int = PER_PAGE,
    params: QueryDict | None = None,
) -> Pager:
    """The requested page of `rows` (ordered). `params` are the query parameters the
    links keep, the request's own by default (a view may have normalised them)."""
    query = (params if params is not None else request.GET).copy()
    for name in (PAGE_PARAM, "fragment"):
        query.pop(name, None)
    paginator = Paginator(rows, per_page(request, default_per_page))
    return Pager(paginator.get_page(request.GET.get(PAGE_PARAM)), query, noun)
