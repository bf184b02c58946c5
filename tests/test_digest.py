"""Daily digests from the routing policy's Jinja2 templates, to real loopback servers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from google.cloud import pubsub_v1

from churnwatch.cli import main
from churnwatch.notify.channels import load_channels
from churnwatch.notify.digest import DigestTemplates
from churnwatch.notify.service import ACK, DeliveryLog, Notifier
from churnwatch.routing import PolicyError, RoutingPolicy
from tests.test_notify_servers import SMTPServer, WebhookReceiver, client_context, tls_files
from tests.test_notify_service import alert, encoded
from tests.test_views_samples import fill_sample

POLICY = Path(__file__).resolve().parents[1] / "churnwatch" / "policy" / "routing.yaml"


def policy_file(tmp_path, **changes) -> Path:
    """The packaged policy with frontline_agent on a daily digest, plus ``changes``."""
    doc = yaml.safe_load(POLICY.read_text())
    doc["owners"]["frontline_agent"]["delivery"] = "daily_digest"
    for key, value in changes.items():
        doc["templates"][key] = value
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def env(tmp_path, monkeypatch):
    db = tmp_path / "wh.duckdb"
    fill_sample(db).close()
    with WebhookReceiver() as hook, SMTPServer("cw", "pw-digest-1") as smtp:
        # TLS loopback servers: the CLI trusts their test certificate as SSL_CERT_FILE says.
        monkeypatch.setenv("SSL_CERT_FILE", tls_files()[0])
        monkeypatch.setenv("CHURNWATCH_WEBHOOK_FRONTLINE", hook.url())
        for key, value in {"HOST": "127.0.0.1", "PORT": str(smtp.port), "USER": "cw",
                           "PASSWORD": "pw-digest-1"}.items():  # fmt: skip
            monkeypatch.setenv(f"CHURNWATCH_SMTP_{key}", value)
        yield db, hook, smtp


def digest(db, tmp_path, *extra) -> int:
    return main(
        ["alerts", "digest", "--warehouse", f"duckdb://{db}", "--policy",
         str(policy_file(tmp_path)), "--state", str(tmp_path / "log.duckdb"),
         "--day", "2026-06-30", *extra]
    )  # fmt: skip


def test_one_digest_per_owner_ranked_by_revenue_and_sent_once(env, tmp_path, capsys):
    db, hook, smtp = env
    assert digest(db, tmp_path) == 0
    assert "2 sent, 0 already sent, 0 failed" in capsys.readouterr().out
    # frontline_agent (webhook): a2 (2,000) before a3 (800), one Slack-compatible message.
    assert hook.delivered == ["digest:frontline_agent:2026-06-30"]
    text = hook.requests[0]["text"]
    assert "2 customers with 2 open alerts, 2,800 EUR at risk" in text
    assert re.search(r"1\. \[HIGH\] AT_RISK_SILENT c1: 2,000 EUR, OPEN, above your authority", text)
    assert text.index("alert a2") < text.index("alert a3")
    # account_director (email, daily_digest in the packaged policy): a1 alone.
    (mail,) = smtp.inbox.messages
    assert mail["To"] == "account-directors@example.com"
    subject = " ".join(mail["Subject"].split())  # long headers are folded on the wire
    assert subject == "Churnwatch: 1 customer to call for account_director, 30,000 EUR at risk"
    assert "SILENT_CHURN c3: 30,000 EUR" in mail.get_payload()
    # support_lead is on a digest too but has no open alerts: no message.
    # A rerun the same day sends nothing new.
    assert digest(db, tmp_path) == 0
    assert "0 sent, 2 already sent" in capsys.readouterr().out
    assert len(hook.requests) == 1 and len(smtp.inbox.messages) == 1


def test_dry_run_prints_and_sends_nothing(env, tmp_path, capsys):
    db, hook, smtp = env
    assert digest(db, tmp_path, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "--- frontline_agent via webhook_env" in out and "2 digests (dry run" in out
    assert hook.requests == [] and smtp.inbox.messages == []


@pytest.mark.parametrize(
    ("template", "text", "message"),
    [
        ("digest", "{{ ownr }}", "templates.digest: 'ownr' is undefined"),
        ("digest", "{% for a in alerts %}", "templates.digest: Unexpected end of template"),
        ("digest_subject", "", "templates.digest_subject is missing"),
        ("digest", "{{ owner.__class__.__mro__ }}", "templates.digest"),  # sandboxed
    ],
)
def test_bad_templates_stop_the_start_with_the_template_named(tmp_path, template, text, message):
    path = policy_file(tmp_path, **{template: text})
    with pytest.raises(PolicyError, match=re.escape(message)):
        DigestTemplates.from_policy(RoutingPolicy.load(path))


def test_bad_template_exits_2_before_touching_the_warehouse(tmp_path, capsys):
    path = policy_file(tmp_path, digest="{{ nope }}")
    missing = tmp_path / "not-there.duckdb"
    argv = ["alerts", "digest", "--warehouse", f"duckdb://{missing}", "--policy", str(path)]
    assert main(argv) == 2
    assert "templates.digest: 'nope' is undefined" in capsys.readouterr().err


def test_unknown_delivery_is_a_policy_error(tmp_path):
    doc = yaml.safe_load(POLICY.read_text())
    doc["owners"]["frontline_agent"]["delivery"] = "weekly"
    with pytest.raises(PolicyError, match="delivery must be one of"):
        RoutingPolicy.from_dict(doc, "p.yaml")


def test_the_notifier_leaves_digest_owners_to_the_digest(tmp_path, monkeypatch):
    """No per-alert message for a daily_digest owner; per-alert owners still get theirs."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")  # the client never pulls here
    state = DeliveryLog(tmp_path / "log.duckdb")
    with WebhookReceiver() as hook:
        env = {"CHURNWATCH_WEBHOOK_FRONTLINE": hook.url()}
        channels = load_channels([env and {"webhook_env": "CHURNWATCH_WEBHOOK_FRONTLINE"}], env,
                                 ssl_context=client_context())  # fmt: skip
        notifier = Notifier(
            "projects/p/subscriptions/s", state, RoutingPolicy.load(), channels=channels
        )
        try:
            for alert_id, owner in (("d1", "account_director"), ("f1", "frontline_agent")):
                data, attributes = encoded(alert(alert_id, owner))
                message = pubsub_v1.types.PubsubMessage(
                    data=data, attributes=attributes, message_id=alert_id
                )
                assert notifier.handle(message) == ACK  # acked either way
        finally:
            notifier.close()
            state.close()
    assert hook.delivered == ["f1"]
    assert notifier.counts["left_for_digest"] == 1 and notifier.counts["delivered"] == 1


def test_a_customer_with_several_alerts_is_one_entry():
    from churnwatch.notify.digest import digest_context

    def a(alert_id, customer, revenue):
        return {"alert_id": alert_id, "customer_id": customer, "revenue_at_risk": revenue}

    context = digest_context(
        "am", "", "2026-06-30", [a("x1", "c1", 100.0), a("x2", "c1", 900.0), a("y", "c2", 50.0)]
    )
    # c1 once with its largest alert (x2) and one more; revenue counts c1 once.
    assert [(e["alert_id"], e["more"]) for e in context["alerts"]] == [("x2", 1), ("y", 0)]
    assert (context["customers"], context["total_alerts"]) == (2, 3)
    assert context["total_revenue_at_risk"] == 950.0
