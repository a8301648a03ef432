"""syncs: push certificates to cloud destinations (AWS ACM and Secrets Manager, Azure Key
Vault, Cloudflare) and keep them current through renewals, revocations and expiry."""
