from rest_framework.routers import SimpleRouter

from ciaoweb.events.api.views import EventViewSet

router = SimpleRouter()
router.register("events", EventViewSet)
