"""Alerting: channels, rules and deliveries for certificate events."""
