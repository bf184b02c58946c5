"""Churnwatch package. Dataflow workers install it with ``--setup_file ./setup.py``."""

from setuptools import find_packages, setup

setup(
    name="churnwatch",
    version="0.1.0",
    description="Event-driven customer feedback pipeline that detects silent churn",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["churnwatch*", "pipelines*", "transforms*", "schemas*"]),
    package_data={
        "schemas": ["*.avsc"],
        "churnwatch.policy": ["*.yaml"],
        "churnwatch.model": ["*.json"],
    },
    include_package_data=True,
    install_requires=[
        "apache-beam[gcp]>=2.77,<3",
        "google-cloud-pubsub>=2.44,<3",
        "google-cloud-bigquery>=3.47,<4",
        "google-cloud-secret-manager>=2.32,<3",  # sm:// references (churnwatch/secrets.py)
        "fastavro>=1.13,<2",
        "duckdb>=2.0,<3",
        "numpy>=2",
        "scipy>=1.17",
        "PyYAML>=6",
        # Digest message templates (churnwatch/policy/routing.yaml).
        "Jinja2>=3.1,<4",
        # Stream quality runs on the workers by default (--stream_quality=on).
        "great-expectations>=1.24,<2",
    ],
    extras_require={
        "report": ["matplotlib>=3.11"],
        "notify": ["aiosmtpd>=1.4"],
    },
    entry_points={"console_scripts": ["churnwatch=churnwatch.cli:main"]},
)
