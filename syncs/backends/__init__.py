"""One backend module per provider (aws: ACM and Secrets Manager; azure: Key Vault;
cloudflare: custom certificates), each keeping the contract in ``base``."""

from __future__ import annotations

from syncs.backends.base import Backend
from syncs.choices import Destination


def for_destination(destination: str) -> Backend:
    """The backend of a destination (imported on first use: SDKs load slowly)."""
    if destination == Destination.AWS_ACM:
        from syncs.backends.aws import ACM

        return ACM
    if destination == Destination.AWS_SECRETS_MANAGER:
        from syncs.backends.aws import SECRETS_MANAGER

        return SECRETS_MANAGER
    if destination == Destination.AZURE_KEY_VAULT:
        from syncs.backends.azure import KEY_VAULT

        return KEY_VAULT
    if destination == Destination.CLOUDFLARE:
        from syncs.backends.cloudflare import CUSTOM_CERTIFICATES

        return CUSTOM_CERTIFICATES
    raise KeyError(destination)


def test_connection(kind: str, connection: object) -> str:
    """Test credentials on their own (no sync options): who the provider says we are."""
    from syncs.backends.base import ConnectionSpec

    assert isinstance(connection, ConnectionSpec)
    if kind == "aws":
        from syncs.backends import aws

        return aws.identity(connection)
    if kind == "azure":
        from syncs.backends import azure

        return azure.identity(connection)
    from syncs.backends import cloudflare

    return cloudflare.identity(connection)
