"""One pagination for every list: NetBox's `limit`/`offset`, and page numbers as before.

The answer is always `{"count", "next", "previous", "results"}`.

- `limit` (or its alias `page_size`): rows per answer, 1 to `MAX_LIMIT`, default
  `PAGE_SIZE`. Anything else is a 400 that says the range: a client asking for more than
  the maximum learns it at once instead of silently getting fewer rows.
- `offset`: rows skipped (0 or more; past the end an empty page).
- `page`: the 1-based page of `limit` rows. A page that is no number or past the last
  page is a 404, as it always was. `page` and `offset` together are a 400.

`next` and `previous` keep the client's style: page links unless it gave an `offset`.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.utils.urls import remove_query_param, replace_query_param

MAX_LIMIT = 1000
LIMIT_PARAMS = ("limit", "page_size")  # page_size: what DRF clients (and our tests) send


def _whole_number(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


class Pagination(LimitOffsetPagination):
    default_limit = api_settings.PAGE_SIZE
    max_limit = MAX_LIMIT
    page_query_param = "page"

    def paginate_queryset(self, queryset: QuerySet, request: Request, view=None) -> list:
        self.page = self._page(request)
        return super().paginate_queryset(queryset, request, view)

    def _page(self, request: Request) -> int | None:
        if self.page_query_param not in request.query_params:
            return None
        if self.offset_query_param in request.query_params:
            raise ValidationError({self.page_query_param: ["give page or offset, not both"]})
        page = _whole_number(request.query_params[self.page_query_param])
        if not page:  # no number, or 0
            raise NotFound("Invalid page: pages are numbered from 1.")
        return page

    def get_limit(self, request: Request) -> int:
        for param in LIMIT_PARAMS:
            if param in request.query_params:
                limit = _whole_number(request.query_params[param])
                if limit is None or not 1 <= limit <= self.max_limit:
                    raise ValidationError(
                        {param: [f"must be a whole number from 1 to {self.max_limit}"]}
                    )
                return limit
        return self.default_limit

    def get_offset(self, request: Request) -> int:
        if self.page is not None:
            last = max(1, -(-self.count // self.limit))
            if self.page > last:
                raise NotFound(f"Invalid page: the last page is {last}.")
            return (self.page - 1) * self.limit
        if self.offset_query_param not in request.query_params:
            return 0
        offset = _whole_number(request.query_params[self.offset_query_param])
        if offset is None:
            raise ValidationError({self.offset_query_param: ["must be a whole number from 0"]})
        return offset

    def _page_links(self) -> bool:
        return self.offset_query_param not in self.request.query_params

    def get_next_link(self) -> str | None:
        if not self._page_links():
            return super().get_next_link()
        if self.offset + self.limit >= self.count:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.page_query_param, (self.page or 1) + 1)

    def get_previous_link(self) -> str | None:
        if not self._page_links():
            return super().get_previous_link()
        if not self.page or self.page == 1:
            return None
        url = self.request.build_absolute_uri()
        if self.page == 2:
            return remove_query_param(url, self.page_query_param)
        return replace_query_param(url, self.page_query_param, self.page - 1)

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        def integer(name: str, description: str, minimum: int, **bounds: int) -> dict:
            schema = {"type": "integer", "minimum": minimum, **bounds}
            return {"name": name, "in": "query", "description": description, "schema": schema}

        size = f"rows per page, 1 to {self.max_limit} (default {self.default_limit})"
        return [
            integer("limit", size, 1, maximum=self.max_limit),
            integer("offset", "rows to skip; not with page", 0),
            integer("page", "the page of limit rows, from 1; not with offset", 1),
            integer("page_size", "the same as limit", 1, maximum=self.max_limit),
        ]
