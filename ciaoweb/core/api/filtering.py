"""List filtering for every collection, the NetBox way: one base FilterSet and its filters.

- Every filter takes several values by repeating the parameter (`?state=running&state=error`
  is either); empty values are ignored, more than `MAX_VALUES` is a 400.
- A foreign key is given by id or by name (`?host=node1`, `?host=<uuid>`): `IdOrNameFilter`,
  whose choices are scoped to what the requester sees (`scoping.filter_choices`), so another
  tenant's id or name is the same 400 as one that does not exist.
- Text fields add NetBox's lookups (`TEXT_LOOKUPS`: `name__ic=web`, `name__n=db`...); choices
  and foreign keys add `__n` (not).
- `q`: free text, case-insensitive, over the filterset's `search_fields`.
- `ordering`: comma-separated names of the filterset's `ordering_fields`, `-` for descending;
  an unknown one is a 400 naming those allowed. Every order, the default one too, ends with
  the primary key, so rows never change places between pages.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from functools import reduce
from operator import or_
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models
from django.db.models import Q, QuerySet
from django.db.models.expressions import BaseExpression
from django_filters.filters import QuerySetRequestMixin
from django_filters.rest_framework import FilterSet
from drf_spectacular.utils import extend_schema_field

MAX_VALUES = 100  # values of one repeated parameter
MAX_SEARCH = 200  # characters of `q`

# suffix -> (lookup, exclude); `n` negates the filter's own lookup (None).
TEXT_LOOKUPS: dict[str, tuple[str | None, bool]] = {
    "n": (None, True),
    "ic": ("icontains", False),
    "nic": ("icontains", True),
    "ie": ("iexact", False),
    "nie": ("iexact", True),
    "isw": ("istartswith", False),
    "iew": ("iendswith", False),
}
NEGATION: dict[str, tuple[str | None, bool]] = {"n": (None, True)}
LOOKUP_WORDS = {  # the schema's description of each lookup
    "exact": "equals {} of the values",
    "icontains": "contains {} of the values, ignoring case",
    "iexact": "equals {} of the values, ignoring case",
    "istartswith": "starts with {} of the values, ignoring case",
    "iendswith": "ends with {} of the values, ignoring case",
}

# Django's ModelChoiceField message: it names no value, so every unknown one reads the same.
INVALID_CHOICE = "Select a valid choice. That choice is not one of the available choices."


# --- form fields ----------------------------------------------------------------------------


class MultiValueField(forms.Field):
    """A parameter given once or repeated: the list of its non-empty values, each cleaned
    by `item_field()`."""

    widget = forms.SelectMultiple  # reads every value of a repeated parameter

    def item_field(self) -> forms.Field:
        return forms.CharField()  # strips, and refuses NUL characters (a 400, not a 500)

    def to_python(self, value: Any) -> list:
        values = value if isinstance(value, list | tuple) else [value]
        values = [v for v in values if v not in self.empty_values]
        if len(values) > MAX_VALUES:
            raise ValidationError(f"at most {MAX_VALUES} values", code="too_many")
        item = self.item_field()
        return [item.clean(v) for v in values]


class MultiValueIPv4Field(MultiValueField):
    def item_field(self) -> forms.Field:
        return forms.GenericIPAddressField(protocol="IPv4")


class MultiValueChoiceField(MultiValueField):
    def __init__(self, *, choices: Iterable = (), **kwargs: Any) -> None:
        self.choices = list(choices)
        super().__init__(**kwargs)

    def item_field(self) -> forms.Field:
        return forms.ChoiceField(choices=self.choices)


class IdOrNameField(MultiValueField):
    """Ids or names of rows of `queryset` (the ones the requester may see): cleans to their
    primary keys. One that matches nothing there is the same 400 whatever it is."""

    def __init__(self, *, queryset: QuerySet | None = None, name_field: str | None = None, **kw):
        self.queryset, self.name_field = queryset, name_field
        super().__init__(**kw)

    def clean(self, value: Any) -> list:
        values = super().clean(value)
        if not values:
            return []
        ids = {parsed for v in values if (parsed := _uuid(v)) is not None}
        wanted = Q(pk__in=ids)
        names: set[str] = set()
        if self.name_field:
            wanted |= Q(**{f"{self.name_field}__in": values})
            rows = self.queryset.filter(wanted).values_list("pk", self.name_field)
            pks = {pk for pk, _ in rows}
            names = {name for _, name in rows}
        else:
            pks = set(self.queryset.filter(wanted).values_list("pk", flat=True))
        if any(_uuid(v) not in pks and v not in names for v in values):
            raise ValidationError(INVALID_CHOICE, code="invalid_choice")
        return list(pks)


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class StrictBooleanField(forms.NullBooleanField):
    """`true`/`false` (or 1/0); anything else is a 400, not silently no filter."""

    widget = forms.TextInput
    VALUES = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        if isinstance(value, bool):
            return value
        try:
            return self.VALUES[str(value).strip().lower()]
        except KeyError:
            raise ValidationError("must be true or false", code="invalid") from None

    def validate(self, value: Any) -> None:
        pass


# --- filters --------------------------------------------------------------------------------


class MultiValueMixin:
    """Matches any of the values (`exclude`: none of them)."""

    lookups: dict[str, tuple[str | None, bool]] = NEGATION

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("distinct", False)
        super().__init__(*args, **kwargs)

    def filter(self, qs: QuerySet, value: list) -> QuerySet:
        if not value:
            return qs
        if self.lookup_expr == "exact":
            wanted = Q(**{f"{self.field_name}__in": value})
        else:
            lookup = f"{self.field_name}__{self.lookup_expr}"
            wanted = reduce(or_, (Q(**{lookup: v}) for v in value))
        qs = self.get_method(qs)(wanted)
        return qs.distinct() if self.distinct else qs

    def variant(self, lookup_expr: str | None, exclude: bool) -> django_filters.Filter:
        """The same filter with another lookup (`name__ic`) or negated (`name__n`)."""
        lookup_expr = lookup_expr or self.lookup_expr
        words = LOOKUP_WORDS.get(lookup_expr, "{} of the values").format(
            "none" if exclude else "any"
        )
        return type(self)(
            field_name=self.field_name,
            lookup_expr=lookup_expr,
            exclude=exclude,
            distinct=self.distinct,
            **{**self.extra, "label": words},
        )


class MultiValueCharFilter(MultiValueMixin, django_filters.MultipleChoiceFilter):
    field_class = MultiValueField
    lookups = TEXT_LOOKUPS


class IPv4Filter(MultiValueCharFilter):
    """An IPv4 address; its text lookups (`ip__isw=10.1.`) take any text."""

    @property
    def field_class(self) -> type[forms.Field]:
        return MultiValueIPv4Field if self.lookup_expr == "exact" else MultiValueField


class MultiValueChoiceFilter(MultiValueMixin, django_filters.MultipleChoiceFilter):
    field_class = MultiValueChoiceField


class IdOrNameFilter(MultiValueMixin, QuerySetRequestMixin, django_filters.MultipleChoiceFilter):
    """A foreign key by the related row's id or `name_field` (None: by id only).
    `queryset` is a `scoping.filter_choices(...)` callable: the rows the requester sees."""

    field_class = IdOrNameField

    def __init__(self, *args: Any, name_field: str | None = "name", **kwargs: Any) -> None:
        kwargs.setdefault("name_field", name_field)
        super().__init__(*args, **kwargs)
        # A string in the schema (the model field would say uuid), with what it takes.
        what = "an id" + (f" or a {name_field}" if name_field else "")
        which = "none" if self.exclude else "any"
        description = f"{what}; repeat for several (matches {which} of them)"
        extend_schema_field({"type": "string", "description": description})(self)


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class SearchFilter(django_filters.CharFilter):
    """`q`: rows where any of `fields` contains the text, ignoring case."""

    def __init__(self, fields: Iterable[str], **kwargs: Any) -> None:
        self.fields = tuple(fields)
        kwargs.setdefault("max_length", MAX_SEARCH)
        kwargs.setdefault("help_text", f"free text, found in: {', '.join(self.fields)}")
        super().__init__(**kwargs)

    def filter(self, qs: QuerySet, value: str) -> QuerySet:
        if not value:
            return qs
        wanted = reduce(or_, (Q(**{f"{field}__icontains": value}) for field in self.fields))
        if any("__" in field for field in self.fields):
            # Through a to-many relation a row would come once per match: match by id.
            return qs.filter(pk__in=qs.model._default_manager.filter(wanted).values("pk"))
        return qs.filter(wanted)


OrderKey = str | BaseExpression


class OrderingFilter(django_filters.OrderingFilter):
    """`ordering=name,-created`: `paths` maps each allowed name to a field path or an
    expression (e.g. an IP's numeric key)."""

    def __init__(self, paths: dict[str, OrderKey], **kwargs: Any) -> None:
        self.paths = paths
        allowed = ", ".join(paths)
        kwargs.setdefault("fields", [(name, name) for name in paths])
        kwargs.setdefault("help_text", "a leading - sorts descending; commas separate several")
        kwargs.setdefault(
            "error_messages",
            {
                "invalid_choice": f"%(value)s is not a field to order by: use {allowed} "
                "(a leading - sorts descending)"
            },
        )
        super().__init__(**kwargs)

    def get_ordering_value(self, param: str) -> OrderKey:
        descending = param.startswith("-")
        key = self.paths[param.removeprefix("-")]
        if isinstance(key, str):
            return f"-{key}" if descending else key
        return key.desc() if descending else key.asc()


def stable_order(qs: QuerySet) -> QuerySet:
    """`qs` in its order (explicit, else the model's) with the primary key last: ties (two
    instances created in the same microsecond, two networks named `data`) keep one order."""
    query = qs.query
    order = list(query.order_by or (qs.model._meta.ordering if query.default_ordering else ()))
    pk = qs.model._meta.pk.name
    if any(isinstance(key, str) and key.lstrip("-") in ("pk", pk) for key in order):
        return qs
    return qs.order_by(*order, "pk")


# --- the base FilterSet ---------------------------------------------------------------------


class BaseFilterSet(FilterSet):
    """What every collection's filterset derives from. A subclass declares its foreign keys
    as `IdOrNameFilter`s with scoped choices, lists its fields in `Meta.fields`, and sets
    `search_fields` (paths `q` looks in) and `ordering_fields` ({name: path or expression},
    or names that are paths)."""

    search_fields: tuple[str, ...] = ()
    ordering_fields: dict[str, OrderKey] | tuple[str, ...] = ()

    FILTER_DEFAULTS = {
        **FilterSet.FILTER_DEFAULTS,
        models.GenericIPAddressField: {"filter_class": IPv4Filter},
        models.BooleanField: {"filter_class": StrictBooleanFilter},
    }

    @classmethod
    def filter_for_lookup(cls, field: models.Field, lookup_type: str) -> tuple[type, dict]:
        filter_class, params = super().filter_for_lookup(field, lookup_type)
        if filter_class is django_filters.ChoiceFilter:
            return MultiValueChoiceFilter, params
        if filter_class is django_filters.CharFilter:
            return MultiValueCharFilter, params
        if filter_class is django_filters.ModelChoiceFilter:
            # Unscoped choices would tell a member which other tenants' rows exist.
            raise ImproperlyConfigured(
                f"{cls.__name__}: declare the {field.name!r} filter as an IdOrNameFilter "
                "with choices scoped by ciaoweb.core.api.scoping.filter_choices"
            )
        return filter_class, params

    @classmethod
    def get_filters(cls) -> dict[str, django_filters.Filter]:
        filters = super().get_filters()
        for name, base in list(filters.items()):
            if not isinstance(base, MultiValueMixin) or base.method is not None or "__" in name:
                continue
            for suffix, (lookup, exclude) in base.lookups.items():
                filters.setdefault(f"{name}__{suffix}", base.variant(lookup, exclude))
        if cls.search_fields:
            filters["q"] = SearchFilter(cls.search_fields)
        if cls.ordering_fields:
            paths = cls.ordering_fields
            if not isinstance(paths, dict):
                paths = {name: name for name in paths}
            filters["ordering"] = OrderingFilter(paths)
        return filters

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        return stable_order(super().filter_queryset(queryset))
