from rest_framework.routers import SimpleRouter

from ciaoweb.networks.api.views import LeaseViewSet, NetworkViewSet

router = SimpleRouter()
router.register("networks", NetworkViewSet)
router.register("leases", LeaseViewSet)
