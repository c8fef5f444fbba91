"""How a Slack channel shows the monitor's custom notifications (the demo prints them): the
alert as a message, what shares its ``threadId`` as replies under it. Only the fields Amazon Q
Developer in chat applications renders are shown; markdown is left as the channel receives it."""

from __future__ import annotations

from typing import Any


class ChatView:
    """Remembers which threads were opened, so a later message of one is shown as a reply."""

    def __init__(self, channel: str) -> None:
        self._channel = channel
        self._threads: dict[str, int] = {}

    def render(self, notification: dict[str, Any]) -> list[str]:
        content = notification["content"]
        thread = notification["metadata"]["threadId"]
        body = [content["title"], *content["description"].splitlines()]
        if content.get("nextSteps"):
            body += ["Next steps:", *(f"  {step}" for step in content["nextSteps"])]
        if thread in self._threads:
            head = f"  ↳ reply in thread #{self._threads[thread]} of {self._channel}"
            return [head, *(f"    │ {line}" for line in body)]
        self._threads[thread] = len(self._threads) + 1
        head = f"  {self._channel} · thread #{self._threads[thread]} ({thread[:8]})"
        return [head, *(f"  │ {line}" for line in body)]
