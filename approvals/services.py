"""Approval policies: which certificate requests wait for a human decision.

Until approval policies exist, no request needs approval. The pipeline asks here, and
only here, so policies slot in without touching any front.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from issuance.models import CertificateRequest
    from pki.policy import Decision


def approval_required(request: CertificateRequest, decision: Decision) -> bool:
    """Whether the request must wait for approval before it is issued."""
    return False
