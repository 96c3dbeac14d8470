from rest_framework.routers import SimpleRouter

from ciaoweb.inventory.api.views import HostViewSet, PhysicalFunctionViewSet, VirtualFunctionViewSet

router = SimpleRouter()
router.register("hosts", HostViewSet)
router.register("physical-functions", PhysicalFunctionViewSet)
router.register("virtual-functions", VirtualFunctionViewSet)
