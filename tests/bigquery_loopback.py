"""A loopback BigQuery REST endpoint for the real client and Beam's real BigQuery sink.

It answers the calls our code makes (dataset and table inserts, ``insertAll`` streaming
inserts) and the OAuth token exchange, records every request, and refuses streaming rows
the way BigQuery does: per row, with ``insertErrors``. Pointed at with
``BIGQUERY_EMULATOR_HOST`` and a service-account key file whose ``token_uri`` is this
server, so nothing in the client or in Beam is replaced.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PREFIX = "/bigquery/v2/projects/"
INSERT_ALL = re.compile(
    r"^/bigquery/v2/projects/([^/]+)/datasets/([^/]+)/tables/([^/]+)/insertAll$"
)


class LoopbackBigQuery:
    def __init__(self, refuse: Callable[[str, dict[str, Any]], str | None]) -> None:
        """``refuse(table, row)`` returns an error message for a row BigQuery would refuse."""
        self.refuse = refuse
        self.requests: list[tuple[str, str, Any]] = []
        self.stored: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.resources: dict[str, dict[str, Any]] = {}  # path -> dataset / table resource
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> LoopbackBigQuery:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def service_account_file(self, folder: Path, project: str) -> Path:
        """A key file like the one IAM issues; tokens are exchanged with this server."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        path = folder / "service-account.json"
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": project,
                    "private_key_id": "loopback",
                    "private_key": pem,
                    "client_email": f"churnwatch-test@{project}.iam.gserviceaccount.com",
                    "client_id": "1",
                    "token_uri": f"{self.url}/token",
                }
            )
        )
        return path

    def _answer(self, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append((method, path, body))
        if path == "/token":
            return 200, {
                "access_token": "loopback-token",
                "expires_in": 3600,
                "token_type": "Bearer",
            }
        match = INSERT_ALL.match(path)
        if match:
            return 200, self._insert_all(match.group(3), body)
        if method == "GET":  # datasets.get / tables.get
            with self._lock:
                found = self.resources.get(path)
            if found is None:
                return 404, {"error": {"code": 404, "message": f"Not found: {path}"}}
            return 200, found
        # datasets.insert / tables.insert: keep the resource under its GET path
        ref = body.get("tableReference") or body.get("datasetReference")
        where = f"{PREFIX}{ref['projectId']}/datasets/{ref['datasetId']}"
        if "tableId" in ref:
            where += f"/tables/{ref['tableId']}"
        with self._lock:
            if where in self.resources:
                return 409, {"error": {"code": 409, "message": f"Already Exists: {where}"}}
            self.resources[where] = body
        return 200, body

    def _insert_all(self, table: str, body: dict[str, Any]) -> dict[str, Any]:
        rows = body.get("rows", [])
        refused = {}
        for index, row in enumerate(rows):
            reason = self.refuse(table, row["json"])
            if reason:
                refused[index] = reason
        errors = [
            {"index": i, "errors": [{"reason": "invalid", "message": m}]}
            for i, m in refused.items()
        ]
        if refused and not body.get("skipInvalidRows"):
            # BigQuery then stores none of the request: the valid rows come back as
            # "stopped" (transient, so the client sends them again).
            errors += [
                {"index": i, "errors": [{"reason": "stopped", "message": ""}]}
                for i in range(len(rows))
                if i not in refused
            ]
        else:
            with self._lock:
                self.stored[table].extend(r["json"] for i, r in enumerate(rows) if i not in refused)
        reply: dict[str, Any] = {"kind": "bigquery#tableDataInsertAllResponse"}
        if errors:
            reply["insertErrors"] = errors
        return reply

    def _handler(self):
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                content = self.headers.get("Content-Type", "")
                body: Any = raw.decode()
                if raw and "json" in content:
                    body = json.loads(raw)
                status, answer = loopback._answer(method, self.path.split("?")[0], body)
                reply = json.dumps(answer)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply.encode())

            def do_POST(self):
                self._reply("POST")

            def do_GET(self):
                self._reply("GET")

            def log_message(self, *args):
                pass

        return Handler
