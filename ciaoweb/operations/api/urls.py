from rest_framework.routers import SimpleRouter

from ciaoweb.operations.api.views import OperationViewSet

router = SimpleRouter()
router.register("operations", OperationViewSet)
