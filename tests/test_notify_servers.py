"""Real loopback servers for the notifier tests: an HTTPS webhook receiver and an SMTP server
(STARTTLS or implicit TLS), both with a throwaway certificate for 127.0.0.1."""

from __future__ import annotations

import atexit
import datetime
import functools
import ipaddress
import json
import shutil
import ssl
import tempfile
import threading
from collections.abc import Callable
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from churnwatch.emulator import free_port


@functools.cache
def tls_files() -> tuple[str, str]:
    """(certificate, key) PEM files of a self-signed certificate for 127.0.0.1 / localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "churnwatch-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = Path(tempfile.mkdtemp(prefix="churnwatch-tls-"))
    atexit.register(shutil.rmtree, folder, True)
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files())
    return context


def client_context() -> ssl.SSLContext:
    """What the notifier uses, trusting the test certificate (like SSL_CERT_FILE would)."""
    return ssl.create_default_context(cafile=tls_files()[0])


#: A plan entry: (status, headers) to answer, or "hang" to hold the request until released.
Plan = Callable[[int], tuple[int, dict[str, str]] | str]


class WebhookReceiver:
    """Counts the requests it receives and the ones it answered 2xx, per alert_id."""

    def __init__(self, plan: Plan = lambda n: (200, {}), tls: bool = True) -> None:
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
        if tls:
            self.server.socket = server_context().wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, secret: str = "T000/B000/XXXX", scheme: str = "https") -> str:
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}/services/{secret}"

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
    """aiosmtpd on loopback, with LOGIN/PLAIN auth checked against one user and password.

    ``security``: "starttls" (STARTTLS offered and required before AUTH or MAIL), "ssl"
    (implicit TLS from the first byte) or "plain" (no TLS at all: what the old client spoke).
    ``logins`` records each login as (user or "rejected", whether the connection was TLS).
    """

    def __init__(self, user: str, password: str, security: str = "starttls") -> None:
        self.inbox = _Inbox()
        self.logins: list[tuple[str, bool]] = []

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and (
                auth_data.login.decode(),
                auth_data.password.decode(),
            ) == (user, password)
            encrypted = server.transport.get_extra_info("ssl_object") is not None
            self.logins.append((auth_data.login.decode() if ok else "rejected", encrypted))
            return AuthResult(success=ok)

        tls = {
            "starttls": {"tls_context": server_context(), "require_starttls": True},
            "ssl": {"ssl_context": server_context(), "auth_require_tls": False},
            "plain": {"auth_require_tls": False},
        }[security]
        self.controller = Controller(
            self.inbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticate,
            **tls,
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
