"""A note for the agents, as the JSON API and the dashboard's form send it."""

from autopack_site.contract import RequestModel, required_text, text
from autopack_site.limits import NAME_CHARS
from notes.services import MAX_NOTE_CHARS


class HumanNoteIn(RequestModel):
    note: required_text(MAX_NOTE_CHARS)
    run_id: text(NAME_CHARS) = ""
