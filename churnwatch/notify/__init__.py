"""Alerts out to people: the ``churnwatch notify`` service and its delivery channels."""
