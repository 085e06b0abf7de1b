"""Bokeh server hooks for `panel serve app` (run once per server process)."""

from gan2d.ui.page import on_server_loaded

__all__ = ["on_server_loaded"]
