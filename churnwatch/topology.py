"""Names of the topics and subscriptions Churnwatch uses, in one place.

Terraform (infra/), the emulator bootstrap and the demo all take their names from here.
"""

from __future__ import annotations

DEFAULT_PROJECT = "churnwatch-local"

#: input/output -> (topic, subscription the pipeline or notifier reads)
TOPICS = {
    "feedback": ("feedback-events", "feedback-events-churnwatch"),
    "customer": ("customer-events", "customer-events-churnwatch"),
    "alerts": ("churn-alerts", "churn-alerts-notifier"),
}


def topic_path(project: str, topic: str) -> str:
    return f"projects/{project}/topics/{topic}"


def subscription_path(project: str, subscription: str) -> str:
    return f"projects/{project}/subscriptions/{subscription}"


def topic(project: str, source: str) -> str:
    return topic_path(project, TOPICS[source][0])


def subscription(project: str, source: str) -> str:
    return subscription_path(project, TOPICS[source][1])


def layout() -> dict[str, list[str]]:
    """topic name -> subscription names, for :func:`churnwatch.emulator.ensure_topics`."""
    return {t: [s] for t, s in TOPICS.values()}
