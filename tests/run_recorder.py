"""A training sink that keeps every event it is sent, in order (the tests read a run's events from it)."""

from __future__ import annotations

from ml.events import Sink


class Recorder(Sink):
    def __init__(self):
        self.events = []

    def handle(self, event):
        self.events.append(event)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]
