"""The `echo` process: returns its input (the OGC conformance probe), optionally after a pause."""

from __future__ import annotations

from typing import Any

from processes.base import Context, Processor
from processes.errors import InputError

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "echo",
    "title": "Echo",
    "description": "Returns the string it was given (a conformance probe). `pause` waits that many seconds first, "
                   "so a client can watch a running job and dismiss it.",
    "keywords": ["echo", "test"],
    "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
    "outputTransmission": ["value"],
    "inputs": {
        "echoInput": {"title": "Text to echo", "description": "any string", "schema": {"type": "string"},
                      "minOccurs": 1, "maxOccurs": 1},
        "pause": {"title": "Pause (seconds)", "description": "seconds to wait before answering (0-600)",
                  "schema": {"type": "integer", "minimum": 0, "maximum": 600, "default": 0},
                  "minOccurs": 0, "maxOccurs": 1},
    },
    "outputs": {
        "echoInput": {"title": "The same text", "schema": {"type": "string"}},
    },
    "example": {"inputs": {"echoInput": "teststring"}},
    "links": [],
}


class EchoProcessor(Processor):
    """Echo the input back."""

    PROCESS_METADATA = PROCESS_METADATA

    def validate(self, inputs: dict[str, Any], services: dict[str, Any]) -> dict[str, Any]:
        """echoInput must be a string, pause an integer 0-600."""
        inputs = super().validate(inputs, services)
        if not isinstance(inputs["echoInput"], str):
            raise InputError("echoInput must be a string, e.g. \"teststring\"")
        pause = inputs.get("pause", 0)
        if isinstance(pause, bool) or not isinstance(pause, int) or not 0 <= pause <= 600:
            raise InputError(f"pause must be an integer number of seconds between 0 and 600, got {pause!r}")
        return {"echoInput": inputs["echoInput"], "pause": pause}

    def run(self, inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
        """Wait `pause` seconds (dismissable), then return the text."""
        if inputs["pause"]:
            ctx.sleep(float(inputs["pause"]))
        return {"echoInput": inputs["echoInput"]}
