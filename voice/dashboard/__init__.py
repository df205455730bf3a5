"""The operations dashboard: server-rendered pages behind a login, /metrics, /try."""

from voice.dashboard.auth import Gate, Principal
from voice.dashboard.web import Dashboard, mount

__all__ = ["Dashboard", "Gate", "Principal", "mount"]
