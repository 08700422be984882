"""Forge webhooks: one adapter per forge (signature, event routing, parsing), build rules, intake.

Everything in this package is pure (no I/O, no clock): `intake.read_delivery` turns one
delivery into a `events.WebhookEvent` or an `events.Ignored`, and the caller stores the result.
"""
