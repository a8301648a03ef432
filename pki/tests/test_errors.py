import pickle

import pytest

from pki.errors import CSRError, DecodeError, KeyMismatch, PKIError, PolicyViolation


@pytest.mark.parametrize(
    ("cls", "code"),
    [(DecodeError, "malformed"), (CSRError, "bad_csr"), (KeyMismatch, "key_mismatch")],
)
def test_class_default_codes(cls: type[PKIError], code: str) -> None:
    error = cls("boom")
    assert error.code == code
    assert isinstance(error, PKIError)
    assert error.field is None


def test_message_code_and_field_are_kept() -> None:
    error = PolicyViolation("Nope", code="bad_subject", field="subject")
    assert str(error) == "Nope"
    assert error.message == "Nope"
    assert error.code == "bad_subject"
    assert error.field == "subject"
    # Overriding the code on one instance must not leak into the class.
    assert PolicyViolation("x").code != "bad_subject"


def test_errors_survive_pickling_with_code_and_field() -> None:
    error = PolicyViolation("Nope", code="bad_key", field="key")
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is PolicyViolation
    assert (clone.message, clone.code, clone.field) == ("Nope", "bad_key", "key")
