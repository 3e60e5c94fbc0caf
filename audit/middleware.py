from audit.actor import acting_as
from audit.models import ActorKind


class AuditActorMiddleware:
    """Writes during a signed-in request are the user's."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        with acting_as(ActorKind.USER, user.get_username()):
            return self.get_response(request)
