"""A local stand-in for Twilio's Messages API: each SMS the demo sends is written into a folder, as a .txt file.

It answers `POST /2010-04-01/Accounts/{sid}/Messages.json` as Twilio does (201 with the message's SID) for
the demo account only, checking its basic auth; the demo points `TWILIO_API_BASE_URL` here.
"""

from __future__ import annotations

import base64
import hmac
import itertools
import json
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


class SmsOutbox:
    def __init__(self, folder: Path, account_sid: str, auth_token: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._path = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, name="demo-sms", daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()

    def messages(self) -> list[Path]:
        return sorted(self.folder.glob("*.sms.txt"))

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        if request.method != "POST" or request.path != self._path:
            response = Response(json.dumps({"code": 20404, "message": "not found", "status": 404}), 404)
        elif not hmac.compare_digest(request.headers.get("Authorization", ""), self._auth):
            response = Response(json.dumps({"code": 20003, "message": "Authenticate", "status": 401}), 401)
        else:
            with self._lock:
                number = next(self._numbers)
            to = request.form.get("To", "")
            name = f"{number:04d}-{re.sub(r'[^0-9+]', '_', to)}.sms.txt"
            text = f"To: {to}\nFrom: {request.form.get('From', '')}\n\n{request.form.get('Body', '')}\n"
            (self.folder / name).write_text(text, encoding="utf-8")
            sid = f"SM{number:032x}"
            response = Response(json.dumps({"sid": sid, "status": "queued", "to": to, "price": None}), 201)
        response.content_type = "application/json"
        return response(environ, start_response)
