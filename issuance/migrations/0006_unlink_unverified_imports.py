"""Unlink imported certificates from CAs that did not sign them.

Imports used to be linked to the CA named first in their supplied chain, so a forged
certificate could put any serial on that CA's CRL and OCSP answers. A certificate keeps
its link only if the CA's key verifiably signed it and it is not a CA or OCSP responder
certificate (the rule of issuance.trust, repeated here so the migration does not follow
later changes of the code). The CA's CRL is marked stale so the next one drops them.
"""

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.db import migrations


def _is_ca_or_responder(cert):
    try:
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return True
    except x509.ExtensionNotFound:
        pass
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in usages


def _signed_by(cert, ca_cert):
    try:
        cert.verify_directly_issued_by(ca_cert)
    except Exception:  # any failure to verify means "not shown to be signed by it"
        return False
    return not _is_ca_or_responder(cert)


def unlink(apps, schema_editor):
    Certificate = apps.get_model("issuance", "Certificate")
    CertificateAuthority = apps.get_model("profiles", "CertificateAuthority")
    imported = Certificate.objects.filter(method="import", ca__isnull=False)
    ca_certs = {}
    # Read first, then write: SQLite does not isolate an open cursor from the updates.
    for pk, ca_id, pem in list(imported.values_list("pk", "ca_id", "certificate_pem")):
        if ca_id not in ca_certs:
            ca_pem = CertificateAuthority.objects.get(pk=ca_id).certificate_pem
            ca_certs[ca_id] = x509.load_pem_x509_certificate(ca_pem.encode()) if ca_pem else None
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
            keep = ca_certs[ca_id] is not None and _signed_by(cert, ca_certs[ca_id])
        except Exception:  # an unreadable row is not shown to be signed either
            keep = False
        if not keep:
            Certificate.objects.filter(pk=pk).update(ca_id=None)
            CertificateAuthority.objects.filter(pk=ca_id).update(crl_stale=True)


class Migration(migrations.Migration):
    dependencies = [
        ("issuance", "0005_unique_fingerprint_per_application"),
        ("profiles", "0002_ocsp_signer"),
    ]

    operations = [migrations.RunPython(unlink, migrations.RunPython.noop)]
