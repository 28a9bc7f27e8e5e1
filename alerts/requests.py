"""The request bodies of the alerts' dashboard form, one model each."""

from autopack_site.contract import RequestModel, text
from autopack_site.limits import ACTOR_CHARS


class AcknowledgeForm(RequestModel):
    """The dashboard's Acknowledge button, with the name the person typed beside the list (if any)."""

    by: text(ACTOR_CHARS) = ""
