"""A loopback BigQuery REST endpoint for the real client and Beam's real BigQuery sink.

It answers the calls our code makes (dataset and table inserts, ``insertAll`` streaming
inserts, ``tabledata.list`` of what was inserted) and the OAuth token exchange, records
every request, and refuses streaming rows the way BigQuery does: per row, with
``insertErrors``. Pointed at with
``BIGQUERY_EMULATOR_HOST`` and a service-account key file whose ``token_uri`` is this
server, so nothing in the client or in Beam is replaced.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

PREFIX = "/bigquery/v2/projects/"
INSERT_ALL = re.compile(
    r"^/bigquery/v2/projects/([^/]+)/datasets/([^/]+)/tables/([^/]+)/insertAll$"
)
TABLE_DATA = re.compile(r"^(/bigquery/v2/projects/[^/]+/datasets/[^/]+/tables/([^/]+))/data$")


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

    def _answer(
        self, method: str, path: str, body: Any, query: dict[str, list[str]] | None = None
    ) -> tuple[int, dict[str, Any]]:
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
        match = TABLE_DATA.match(path)
        if match and method == "GET":
            return self._table_data(match.group(1), match.group(2), query or {})
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

    def _table_data(
        self, table_path: str, table: str, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any]]:
        """tabledata.list: the stored rows in the REST row format, one page.

        As BigQuery answers it: values as strings, ``selectedFields`` in their order,
        timestamps as int64 microseconds when ``formatOptions.useInt64Timestamp`` is set.
        """
        with self._lock:
            resource = self.resources.get(table_path)
            rows = list(self.stored.get(table, []))
        if resource is None:
            return 404, {"error": {"code": 404, "message": f"Not found: {table_path}"}}
        fields = {f["name"]: f for f in resource["schema"]["fields"]}
        wanted = query.get("selectedFields", [",".join(fields)])[0].split(",")
        micros = query.get("formatOptions.useInt64Timestamp", ["false"])[0].lower() == "true"
        encoded = [
            {"f": [_cell(fields[name], row.get(name), micros) for name in wanted]} for row in rows
        ]
        return 200, {"kind": "bigquery#tableDataList", "totalRows": str(len(rows)), "rows": encoded}

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
                path, _, query = self.path.partition("?")
                status, answer = loopback._answer(method, path, body, parse_qs(query))
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


def _cell(field: dict[str, Any], value: Any, micros: bool) -> dict[str, Any]:
    """One value of a stored (insertAll JSON) row in tabledata.list's ``{"v": ...}`` form."""
    if field.get("mode") == "REPEATED":
        item = {**field, "mode": "NULLABLE"}
        return {"v": [_cell(item, v, micros) for v in value or []]}
    if value is None:
        return {"v": None}
    if field["type"] in ("RECORD", "STRUCT"):
        return {"v": {"f": [_cell(f, value.get(f["name"]), micros) for f in field["fields"]]}}
    if field["type"] == "TIMESTAMP":
        at = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        us = round(at.timestamp() * 1_000_000)
        return {"v": str(us) if micros else f"{us / 1e6:.6f}"}
    if field["type"] in ("BOOLEAN", "BOOL"):
        return {"v": "true" if value else "false"}
    return {"v": str(value)}
