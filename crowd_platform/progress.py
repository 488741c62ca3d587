"""A Dagster logger for the command line: one line per finished step."""

from __future__ import annotations

import logging

import dagster as dg


@dg.logger(description="Prints one line per finished step, for the command line.")
def progress_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("crowd_platform.progress", level=logging.DEBUG)

    class StepHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            event = getattr(record, "dagster_meta", {}).get("dagster_event")
            if event is None:
                return
            if event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                word = "FAILED"
                if event.event_type_value == "STEP_SUCCESS":
                    word = f"done in {event.event_specific_data.duration_ms / 1000:.1f} s"
                print(f"    {event.step_key.replace('__', '/'):<45} {word}", flush=True)

    logger.addHandler(StepHandler())
    return logger
