from ciaoweb.core.api.filtering import BaseFilterSet
from ciaoweb.core.api.scoping import filter_choices
from ciaoweb.tenancy.models import Tenant

# A member knows its own tenant only: another one's id or name is the same 400 as a
# tenant that does not exist.
visible_tenants = filter_choices(Tenant, "pk")


class TenantFilterSet(BaseFilterSet):
    search_fields = ("name",)
    ordering_fields = ("name", "created")

    class Meta:
        model = Tenant
        fields = ["name"]
