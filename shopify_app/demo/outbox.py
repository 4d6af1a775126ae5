"""A local SMTP server that writes every message it receives into a folder, as .eml files."""

from __future__ import annotations

import itertools
import re
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class _FolderHandler:
    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            number = next(self._numbers)
        recipient = re.sub(r"[^A-Za-z0-9@._-]", "_", ",".join(envelope.rcpt_tos))
        (self._folder / f"{number:04d}-{recipient}.eml").write_bytes(envelope.original_content)
        return "250 Message accepted for delivery"


class Outbox:
    """Listens on 127.0.0.1:`port` until stopped."""

    def __init__(self, folder: Path, port: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = port
        self._controller = Controller(_FolderHandler(folder), hostname="127.0.0.1", port=port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml"))
