from rest_framework.routers import SimpleRouter

from ciaoweb.instances.api.views import AttachmentViewSet, InstanceViewSet

router = SimpleRouter()
router.register("instances", InstanceViewSet)
router.register("attachments", AttachmentViewSet)
