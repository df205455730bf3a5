"""The alembic migrations of the call store and the outbox, shipped inside the package.

`Store.migrate()` runs them; no alembic.ini is needed at run time. To write a new revision,
from the repository root:

    alembic -c integrations/alembic.ini revision --autogenerate -m "what changes" \
        -x url=sqlite:///var/postvoice.db
"""

from __future__ import annotations

from alembic.config import Config

__all__ = ["alembic_config"]


def alembic_config() -> Config:
    """An alembic config pointing at these migrations; set `attributes["connection"]` to use
    a connection you hold (and its transaction), or `sqlalchemy.url` to open one."""
    config = Config()
    config.set_main_option("script_location", "integrations:migrations")
    return config
