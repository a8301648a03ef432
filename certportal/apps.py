from django.apps import AppConfig


class CertportalConfig(AppConfig):
    name = "certportal"
    verbose_name = "certportal core"

    def ready(self) -> None:
        from django.core.signals import request_finished, request_started

        from certportal import generation

        # A web request reads the configuration generation from Redis once.
        request_started.connect(generation.request_started, weak=False)
        request_finished.connect(generation.request_finished, weak=False)

        _let_psycopg_cache_the_issuance_statement()


def _let_psycopg_cache_the_issuance_statement() -> None:
    """psycopg turns a statement's %s placeholders into $n once per distinct statement,
    but only for statements of at most 50 parameters; above that it parses the SQL on
    every call (so that bulk INSERTs of ever-changing row counts do not fill its cache).
    The issuance pipeline's one statement (certportal.rows) has about 70 parameters and
    a fixed shape: parsing it cost ~0.15 ms of the ~1.6 ms an issuance takes. Its
    limit is a module constant read at each call (psycopg 3.1 to 3.3);
    tests/test_rows.py fails if the cache stops answering."""
    try:
        from psycopg import _queries
    except ImportError:  # no psycopg: SQLite only
        return
    _queries.MAX_CACHED_STATEMENT_PARAMS = max(_queries.MAX_CACHED_STATEMENT_PARAMS, 256)
