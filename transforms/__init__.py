"""Composite PTransforms, one per business step; each runs on Create/TestStream in tests."""
