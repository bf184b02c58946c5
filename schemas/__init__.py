"""Avro schemas (*.avsc): the single source of truth for every record shape.

This is a package only so the .avsc files ship with the wheel Dataflow workers install.
"""
