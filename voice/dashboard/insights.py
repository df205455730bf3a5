"""Placeholder: filled in by the dashboard work (issue 6)."""

from fastapi import APIRouter

from voice.dashboard.web import Dashboard


def router(dash: Dashboard) -> APIRouter:
    """This module's routes."""
    return APIRouter()
