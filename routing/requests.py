"""Override changes as request models: the JSON API and the dashboard's cell form read the same ones."""

from typing import Annotated

from pydantic import Field

from autopack_site.contract import RequestModel, choice, required_text, text
from autopack_site.limits import DESCRIPTION_CHARS, KEY_CHARS, NAME_CHARS
from routing.config import COMPLEXITIES, ROLES
from routing.models import ModelOverride

SCOPES = (ModelOverride.GLOBAL, ModelOverride.RUN)


class OverrideReset(RequestModel):
    """Which override: its scope (and run), role, category and complexity. Blank category or complexity: any."""

    scope: choice(SCOPES) = ModelOverride.GLOBAL
    run_id: Annotated[text(NAME_CHARS), Field(description="required when scope is run")] = ""
    role: choice(ROLES)
    category: Annotated[text(KEY_CHARS), Field(description="blank: any; general: no special category")] = ""
    complexity: Annotated[choice(("", *COMPLEXITIES)), Field(description="blank: any")] = ""


class OverrideSet(OverrideReset):
    """An override to set: the keys, and the catalog's model to use there."""

    model: Annotated[required_text(KEY_CHARS), Field(description="a model of the catalog")]
    note: text(DESCRIPTION_CHARS) = ""
