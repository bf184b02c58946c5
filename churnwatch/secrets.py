"""Secrets from Secret Manager, with environment variables as the local fallback.

A setting that holds a secret (a webhook URL, the SMTP password) is an environment
variable. Its value is either the secret itself (local runs, tests) or a reference to a
Secret Manager version::

    CHURNWATCH_WEBHOOK_FRONTLINE=sm://projects/my-project/secrets/webhook-frontline/versions/latest

A reference is read once per process with the real Secret Manager client (the caller's
service account needs ``roles/secretmanager.secretAccessor`` on that secret; Terraform
grants it, infra/terraform/secrets.tf). The secret's value is returned to the caller and
never logged; errors name the variable and the secret's resource name, never a value.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping

REFERENCE_PREFIX = "sm://"
_REFERENCE = re.compile(
    r"^sm://(projects/[a-z0-9][a-z0-9.:-]{0,62}/secrets/[A-Za-z0-9_-]{1,255}"
    r"/versions/(?:latest|[1-9][0-9]*))$"
)

#: Reads one secret version by resource name (projects/P/secrets/S/versions/V).
Fetch = Callable[[str], str]


class SecretError(ValueError):
    """A secret reference is malformed or could not be read."""


def parse_reference(value: str) -> str | None:
    """The version's resource name when ``value`` is an ``sm://`` reference, else None.

    Raises :class:`SecretError` for a value that starts with ``sm://`` but is not a
    complete reference (a typo must not be sent to a server as if it were the secret).
    """
    if not value.startswith(REFERENCE_PREFIX):
        return None
    match = _REFERENCE.match(value.strip())
    if not match:
        raise SecretError(
            "expected sm://projects/PROJECT/secrets/NAME/versions/(latest|N) "
            "for a Secret Manager reference"
        )
    return match.group(1)


class SecretManagerFetch:
    """Reads secret versions with google-cloud-secret-manager; one read per name and process.

    ``client`` defaults to ``SecretManagerServiceClient()`` with Application Default
    Credentials (the Dataflow worker's or the notifier's service account).
    """

    def __init__(self, client=None) -> None:
        self._client = client
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> str:
        with self._lock:
            if name in self._cache:
                return self._cache[name]
            if self._client is None:
                from google.cloud import secretmanager

                self._client = secretmanager.SecretManagerServiceClient()
            try:
                response = self._client.access_secret_version(request={"name": name})
            except Exception as exc:  # the client raises many types; none may leak a value
                raise SecretError(f"could not read {name}: {type(exc).__name__}") from None
            value = response.payload.data.decode("utf-8")
            self._cache[name] = value
            return value


_default_fetch: SecretManagerFetch | None = None


def default_fetch() -> SecretManagerFetch:
    global _default_fetch
    if _default_fetch is None:
        _default_fetch = SecretManagerFetch()
    return _default_fetch


def resolve_env(
    name: str, environ: Mapping[str, str] | None = None, fetch: Fetch | None = None
) -> str | None:
    """The secret behind variable ``name``: the referenced version's value, or the plain
    value (the local fallback), or None when the variable is not set."""
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value is None:
        return None
    try:
        resource = parse_reference(value)
    except SecretError as exc:
        raise SecretError(f"{name}: {exc}") from None
    if resource is None:
        return value
    try:
        return (fetch or default_fetch())(resource)
    except SecretError as exc:
        raise SecretError(f"{name}: {exc}") from None
