from django.conf import settings


def dashboard(request):
    return {"poll_seconds": settings.AUTOPACK_POLL_SECONDS}
