from rest_framework.routers import SimpleRouter

from ciaoweb.tenancy.api.views import TenantViewSet

router = SimpleRouter()
router.register("tenants", TenantViewSet)
