"""The OCSP responder: pre-signed answers (stored at issuance and revocation, refreshed
before nextUpdate) served for nonce-free requests, live signing for the rest."""
