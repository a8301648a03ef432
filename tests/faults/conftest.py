from tests.api.conftest import api, tokens  # noqa: F401 - bearer-token API clients
