"""Real loopback servers for the notifier tests: an HTTP webhook receiver and an SMTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from churnwatch.emulator import free_port

#: A plan entry: (status, headers) to answer, or "hang" to hold the request until released.
Plan = Callable[[int], tuple[int, dict[str, str]] | str]


class WebhookReceiver:
    """Counts the requests it receives and the ones it answered 2xx, per alert_id."""

    def __init__(self, plan: Plan = lambda n: (200, {})) -> None:
        self.plan = plan
        self.requests: list[dict] = []  # every request body, in arrival order
        self.delivered: list[str] = []  # alert_ids answered with 2xx
        self.arrivals: list[float] = []
        self.release = threading.Event()  # lets hanging requests finish
        self.hanging = threading.Event()  # set when a request is being held
        self.got = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                import time

                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.got:
                    n = len(receiver.requests)
                    receiver.requests.append(body)
                    receiver.arrivals.append(time.monotonic())
                    receiver.got.notify_all()
                answer = receiver.plan(n)
                if answer == "hang":
                    receiver.hanging.set()
                    receiver.release.wait(30)
                    return  # never answers; the client times out or is gone
                status, headers = answer
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                self.wfile.flush()
                if 200 <= status < 300:
                    with receiver.got:
                        receiver.delivered.append(body["alert_id"])
                        receiver.got.notify_all()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, secret: str = "T000/B000/XXXX") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/{secret}"

    def wait_delivered(self, n: int, timeout: float) -> bool:
        with self.got:
            return self.got.wait_for(lambda: len(self.delivered) >= n, timeout)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"


class SMTPServer:
    """aiosmtpd on loopback, with LOGIN/PLAIN auth checked against one user and password."""

    def __init__(self, user: str, password: str) -> None:
        self.inbox = _Inbox()
        self.logins: list[str] = []

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and (
                auth_data.login.decode(),
                auth_data.password.decode(),
            ) == (user, password)
            self.logins.append(auth_data.login.decode() if ok else "rejected")
            return AuthResult(success=ok)

        self.controller = Controller(
            self.inbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticate,
            auth_require_tls=False,
        )  # fmt: skip

    @property
    def port(self) -> int:
        return self.controller.port

    def alert_ids(self) -> list[str]:
        with self.inbox.lock:
            return [m["X-Churnwatch-Alert-Id"] for m in self.inbox.messages]

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()
