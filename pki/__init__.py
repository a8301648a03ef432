"""Django-free X.509 building blocks for certportal.

Everything that touches keys, CSRs, certificates, CRLs, OCSP and PKCS#12 lives here so it can
be tested (and reasoned about) without a database. Django apps call into this package; this
package never imports Django.
"""
