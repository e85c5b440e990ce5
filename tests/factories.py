"""factory_boy factories for the rows tests build by hand: people, roles held, access requests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import factory
from factory.django import DjangoModelFactory

from access.models import AccessRequest, Role, RoleMembership
from portal.models import User


class UserFactory(DjangoModelFactory[User]):
    """A person as the portal knows them after signing in: `sub` from Auth0, an e-mail Auth0
    verified (pass email_verified=False for one it did not), and no password."""

    class Meta:
        model = User
        django_get_or_create = ("sub",)

    email = factory.Sequence(lambda n: f"person-{n}@example.com")
    sub = factory.LazyAttribute(lambda user: f"auth0|{user.email}")
    name = factory.LazyAttribute(lambda user: user.email.split("@")[0].title())
    email_verified = True

    @classmethod
    def _create(cls, model_class: type[User], *args: Any, **kwargs: Any) -> User:
        # Through the manager, as sign-in creates people: it normalizes the e-mail and leaves
        # the password unusable.
        return model_class.objects.create_user(
            kwargs.pop("sub"), kwargs.pop("email"), kwargs.pop("name"), **kwargs
        )


class RoleFactory(DjangoModelFactory[Role]):
    """A role in the mirror, found by name if a test or a sync made it already."""

    class Meta:
        model = Role
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"role-{n}.viewer")


class RoleMembershipFactory(DjangoModelFactory[RoleMembership]):
    """A role a person holds in the mirror, as sign-in recorded it unless told otherwise."""

    class Meta:
        model = RoleMembership

    user = factory.SubFactory(UserFactory)
    role = factory.SubFactory(RoleFactory)
    source = RoleMembership.Source.SIGN_IN


class AccessRequestFactory(DjangoModelFactory[AccessRequest]):
    """A request for a role of an entity, written as a row (not through the form or the API):
    pending for seven days unless told otherwise."""

    class Meta:
        model = AccessRequest

    requester = factory.SubFactory(UserFactory)
    entity_ref = "component:default/payments-api"
    role_name = "payments.viewer"
    reason = "On call for payments"
    duration = timedelta(days=7)
    state = AccessRequest.State.PENDING


class GrantFactory(AccessRequestFactory):
    """An approved request carried into Auth0: active, with the role held as a portal grant
    until it ends."""

    class Meta:
        skip_postgeneration_save = True

    state = AccessRequest.State.ACTIVE
    expires_at = None

    @factory.post_generation
    def membership(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            RoleMembershipFactory.create(
                user=self.requester,
                role=RoleFactory.create(name=self.role_name),
                source=RoleMembership.Source.PORTAL_GRANT,
                expires_at=self.expires_at,
            )
