"""Churnwatch: detect silent churn from customer feedback and lifecycle events."""

__version__ = "0.1.0"
