"""Secret Manager references resolved by the real client against a loopback REST server.

The google-cloud-secret-manager client takes an endpoint override and a REST transport, so
the request it sends (``GET /v1/projects/P/secrets/S/versions/V:access``) and the answer it
parses are real; only the server is ours. A live Secret Manager call (credentials, IAM) is
not run here.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.auth.credentials import AnonymousCredentials

from churnwatch.notify.channels import ChannelConfigError, load_channels, send_webhook
from churnwatch.secrets import SecretError, SecretManagerFetch, parse_reference, resolve_env
from tests.test_notify_channels import FAST, alert
from tests.test_notify_servers import WebhookReceiver, client_context

REF = "sm://projects/churnwatch-prod/secrets/webhook-frontline/versions/latest"


class SecretManagerServer:
    """Answers AccessSecretVersion for the secrets it holds, 404 for the others."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                server.paths.append(path)
                name = path.removeprefix("/v1/").removesuffix(":access")
                if name in secrets:
                    status, doc = 200, {"name": name, "payload": {
                        "data": base64.b64encode(secrets[name].encode()).decode()}}  # fmt: skip
                else:
                    error = {"code": 404, "status": "NOT_FOUND", "message": "not found"}
                    status, doc = 404, {"error": error}
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def client(self):
        from google.cloud import secretmanager

        return secretmanager.SecretManagerServiceClient(
            transport="rest",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": f"http://127.0.0.1:{self.httpd.server_address[1]}"},
        )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_parse_reference():
    assert parse_reference(REF) == REF.removeprefix("sm://")
    assert parse_reference("https://hooks.example.com/x") is None  # a plain value
    for bad in ("sm://projects/p/secrets/s", "sm://projects/P!/secrets/s/versions/1",
                "sm://projects/proj/secrets/s/versions/0"):  # fmt: skip
        with pytest.raises(SecretError, match="sm://projects/PROJECT"):
            parse_reference(bad)


def test_plain_values_are_the_local_fallback():
    assert resolve_env("HOOK", {"HOOK": "https://h.example.com/x"}) == "https://h.example.com/x"
    assert resolve_env("HOOK", {}) is None


def test_a_reference_is_read_once_with_the_secret_manager_client():
    with WebhookReceiver() as hook:
        name = REF.removeprefix("sm://")
        with SecretManagerServer({name: hook.url("T0/B0/from-secret-manager")}) as sm:
            fetch = SecretManagerFetch(sm.client())
            channels = load_channels(
                [{"webhook_env": "HOOK"}, {"webhook_env": "HOOK"}],
                {"HOOK": REF},
                ssl_context=client_context(),
                fetch=fetch,
            )
            assert resolve_env("HOOK", {"HOOK": REF}, fetch).endswith("from-secret-manager")
        send_webhook(channels, "HOOK", alert("sm-1"), FAST)
    assert hook.delivered == ["sm-1"]  # the URL came from Secret Manager
    assert sm.paths == [f"/v1/{name}:access"]  # one read, then the process cache
    assert "from-secret-manager" not in repr(channels)


def test_a_missing_secret_names_the_variable_and_the_secret_not_a_value():
    with SecretManagerServer({}) as sm, pytest.raises(ChannelConfigError) as info:
        load_channels(
            [{"webhook_env": "HOOK"}], {"HOOK": REF}, fetch=SecretManagerFetch(sm.client())
        )
    message = str(info.value)
    assert "HOOK" in message and "webhook-frontline" in message and "NotFound" in message


def test_smtp_password_from_secret_manager():
    name = "projects/churnwatch-prod/secrets/smtp-password/versions/2"
    environ = {"CHURNWATCH_SMTP_HOST": "mail.example.com", "CHURNWATCH_SMTP_USER": "u",
               "CHURNWATCH_SMTP_PASSWORD": f"sm://{name}"}  # fmt: skip
    with SecretManagerServer({name: "pw-from-sm"}) as sm:
        channels = load_channels(
            [{"email": "a@example.com"}], environ, fetch=SecretManagerFetch(sm.client())
        )
    assert channels.smtp.password == "pw-from-sm" and "pw-from-sm" not in repr(channels)
