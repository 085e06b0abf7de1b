"""Bokeh server hooks for the app directory: compile the default preset at start."""

import lab_runner
import lab_state


def on_server_loaded(server_context):
    lab_runner.warm_in_background(lab_state.preset_config(lab_state.DEFAULT_PRESET))
