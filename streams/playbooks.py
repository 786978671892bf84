"""Loading the playbook the settings name (the file read happens here, at the edge)."""

from __future__ import annotations

from streams import journey as core
from streams.settings import Settings


def load_configured_playbook(settings: Settings) -> core.Playbook:
    """The playbook at `settings.playbook`, or the bundled default."""
    if settings.playbook is None:
        return core.default_playbook()
    if not settings.playbook.exists():
        raise FileNotFoundError(f"playbook {settings.playbook} does not exist")
    return core.load_playbook_file(settings.playbook)
