"""The portal's writes: people as Auth0 describes them."""

import pytest

from portal.services import user_sign_in_record

pytestmark = pytest.mark.django_db


def test_a_person_is_created_once_and_keeps_auth0s_current_name_and_email() -> None:
    first = user_sign_in_record(
        sub="auth0|1", email="ada@example.com", name="Ada", email_verified=True
    )

    again = user_sign_in_record(
        sub="auth0|1", email="ada@newco.example", name="Ada L.", email_verified=False
    )

    assert again.pk == first.pk
    assert (again.email, again.name) == ("ada@newco.example", "Ada L.")
    # A new address Auth0 has not verified yet is not trusted on the strength of the old one.
    assert first.email_verified and not again.email_verified
    assert not again.has_usable_password()


def test_the_same_email_under_another_sub_is_another_person() -> None:
    ada = user_sign_in_record(
        sub="auth0|1", email="ada@example.com", name="Ada", email_verified=True
    )

    other = user_sign_in_record(
        sub="google-oauth2|9", email="ada@example.com", name="Ada", email_verified=True
    )

    assert other.pk != ada.pk
