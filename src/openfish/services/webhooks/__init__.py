"""Webhooks: target rules and signatures, the delivery queue and the sender."""
