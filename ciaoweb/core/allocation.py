"""Lowest-free-integer search done by the database, used for VLANs and VNIs.

Instead of loading every taken value, ask for the first taken value in the range whose
successor is not taken: with an index on the field this touches only the run of taken
values at the start of the range, never the whole range.
"""

from django.db.models import Exists, OuterRef, QuerySet


def first_free_integer(taken: QuerySet, field: str, low: int, high: int) -> int | None:
    """The lowest integer in [low, high] that no row of `taken` has in `field`, or None."""
    if low > high:
        return None
    in_range = taken.filter(**{f"{field}__gte": low, f"{field}__lte": high})
    if not in_range.filter(**{field: low}).exists():
        return low
    successor_taken = taken.filter(**{field: OuterRef(field) + 1})
    last_of_first_run = (
        in_range.filter(~Exists(successor_taken))
        .order_by(field)
        .values_list(field, flat=True)
        .first()
    )
    if last_of_first_run is None or last_of_first_run + 1 > high:
        return None
    return last_of_first_run + 1
