"""Bokeh server hooks for the app directory (run once per server process)."""

import asyncio
import logging

import lab_runner
import lab_state

log = logging.getLogger("gan2d.app")


def _quiet_closed_sockets(loop, context):
    """A frame written while its tab closes fails with WebSocketClosedError in a task
    nobody awaits; asyncio would print a traceback for it (holoviz/panel#3113). Keep
    that one to a line and leave every other error to the default handler."""
    error = context.get("exception")
    if type(error).__name__ in ("WebSocketClosedError", "StreamClosedError"):
        log.info("gan2d: dropped a frame for a closed tab")
        return
    loop.default_exception_handler(context)


def on_server_loaded(server_context):
    asyncio.get_event_loop().set_exception_handler(_quiet_closed_sockets)
    # compile the default preset now, so the first visitor's Play is instant
    lab_runner.warm_in_background(lab_state.preset_config(lab_state.DEFAULT_PRESET))
