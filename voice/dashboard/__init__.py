"""The operations dashboard: server-rendered pages behind the admin token, /metrics, /try."""

from voice.dashboard.auth import AdminGate
from voice.dashboard.web import Dashboard, mount

__all__ = ["AdminGate", "Dashboard", "mount"]
