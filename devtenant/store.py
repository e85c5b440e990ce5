"""The devtenant's state: users, roles, clients, APIs and signing keys, in one JSON file."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet, RSAKey
from werkzeug.security import check_password_hash

MANAGEMENT_SCOPES = [
    "read:users",
    "update:users",
    "read:roles",
    "create:roles",
    "update:roles",
    "delete:roles",
    "read:role_members",
    "create:role_members",
    "delete:role_members",
]


def new_id(prefix: str, length: int = 16) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


@dataclass
class User:
    user_id: str
    email: str
    name: str
    password_hash: str
    email_verified: bool = True
    blocked: bool = False
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def as_auth0(self) -> dict[str, Any]:
        """The user as the Management API shows it."""
        local_id = self.user_id.split("|", 1)[-1]
        body: dict[str, Any] = {
            "user_id": self.user_id,
            "email": self.email,
            "email_verified": self.email_verified,
            "name": self.name,
            "nickname": self.email.split("@", 1)[0],
            "picture": "",
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "identities": [
                {
                    "connection": "Username-Password-Authentication",
                    "provider": "auth0",
                    "user_id": local_id,
                    "isSocial": False,
                }
            ],
        }
        if self.blocked:
            body["blocked"] = True
        return body


@dataclass
class Role:
    id: str
    name: str
    description: str = ""
    # Permissions the role carries, as (API identifier, permission name) pairs.
    permissions: list[list[str]] = field(default_factory=list)

    def as_auth0(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "description": self.description}


@dataclass
class Client:
    client_id: str
    client_secret: str
    name: str
    app_type: str = "regular_web"  # or "non_interactive" for machine-to-machine
    callbacks: list[str] = field(default_factory=list)
    allowed_logout_urls: list[str] = field(default_factory=list)
    grant_types: list[str] = field(
        default_factory=lambda: ["authorization_code", "client_credentials"]
    )
    # Client grants: API identifier -> scopes this client may ask for with client credentials.
    client_grants: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class ResourceServer:
    identifier: str
    name: str
    scopes: list[str] = field(default_factory=list)
    # "Add Permissions in the Access Token" (RBAC with the access_token_authz dialect).
    token_dialect: str = "access_token_authz"


@dataclass
class Assignment:
    user_id: str
    role_id: str
    # Monotonic position, so checkpoint paging is stable while members are added.
    seq: int


@dataclass
class TenantData:
    users: dict[str, User] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    clients: dict[str, Client] = field(default_factory=dict)
    apis: dict[str, ResourceServer] = field(default_factory=dict)
    assignments: list[Assignment] = field(default_factory=list)
    next_seq: int = 1
    # Private signing keys as JWK dicts, newest first; the first one signs.
    keys: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TenantData:
        return cls(
            users={k: User(**v) for k, v in raw.get("users", {}).items()},
            roles={k: Role(**v) for k, v in raw.get("roles", {}).items()},
            clients={k: Client(**v) for k, v in raw.get("clients", {}).items()},
            apis={k: ResourceServer(**v) for k, v in raw.get("apis", {}).items()},
            assignments=[Assignment(**a) for a in raw.get("assignments", [])],
            next_seq=raw.get("next_seq", 1),
            keys=raw.get("keys", []),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def generate_signing_key() -> dict[str, Any]:
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
    exported: dict[str, Any] = key.as_dict(private=True)
    return exported


class Tenant:
    """The state file with a lock around every change; re-read when another process wrote it."""

    def __init__(self, path: Path, issuer: str) -> None:
        self.path = path
        self.issuer = issuer
        self._lock = threading.RLock()
        self._mtime = 0.0
        self.data = TenantData()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.change():
            pass  # loads the file, or writes a new tenant with a signing key

    @property
    def management_audience(self) -> str:
        return self.issuer + "api/v2/"

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        with open(self.path.with_suffix(".lock"), "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _load(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return
        if mtime != self._mtime:
            self.data = TenantData.from_json(json.loads(self.path.read_text()))
            self._mtime = mtime

    def refresh(self) -> None:
        """Pick up changes another process (such as `rotate-key`) wrote to the file."""
        with self._lock:
            self._load()

    @contextmanager
    def change(self) -> Iterator[TenantData]:
        with self._lock, self._file_lock():
            self._load()
            if not self.data.keys:
                self.data.keys.append(generate_signing_key())
            yield self.data
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(self.data.to_json(), indent=1))
            os.replace(temporary, self.path)
            self._mtime = self.path.stat().st_mtime

    # --- keys ---------------------------------------------------------------------------------

    def signing_key(self) -> RSAKey:
        return RSAKey.import_key(self.data.keys[0])

    def public_jwks(self) -> dict[str, Any]:
        keys = [RSAKey.import_key(raw).as_dict(private=False) for raw in self.data.keys]
        return {"keys": keys}

    def key_set(self) -> KeySet:
        return KeySet([RSAKey.import_key(raw) for raw in self.data.keys])

    def rotate_key(self, *, keep: int = 2) -> str:
        """Sign with a new key from now on; keep the previous ones published for verification."""
        with self.change() as data:
            data.keys.insert(0, generate_signing_key())
            del data.keys[keep + 1 :]
            kid: str = data.keys[0]["kid"]
        return kid

    # --- users, roles, assignments ----------------------------------------------------------------

    def user_by_email(self, email: str) -> User | None:
        wanted = email.strip().lower()
        return next((u for u in self.data.users.values() if u.email.lower() == wanted), None)

    def role_by_name(self, name: str) -> Role | None:
        return next((r for r in self.data.roles.values() if r.name == name), None)

    def roles_of(self, user_id: str) -> list[Role]:
        ids = [a.role_id for a in self.data.assignments if a.user_id == user_id]
        return [self.data.roles[i] for i in ids if i in self.data.roles]

    def members_of(self, role_id: str) -> list[tuple[int, User]]:
        return [
            (a.seq, self.data.users[a.user_id])
            for a in self.data.assignments
            if a.role_id == role_id and a.user_id in self.data.users
        ]

    def permissions_of(self, user_id: str, audience: str) -> list[str]:
        names = {
            permission
            for role in self.roles_of(user_id)
            for api, permission in role.permissions
            if api == audience
        }
        return sorted(names)


def add_user(
    data: TenantData, *, email: str, name: str, password_hash: str, user_id: str | None = None
) -> User:
    user = User(
        user_id=user_id or "auth0|" + secrets.token_hex(12),
        email=email,
        name=name,
        password_hash=password_hash,
    )
    data.users[user.user_id] = user
    return user


def add_role(
    data: TenantData,
    *,
    name: str,
    description: str = "",
    role_id: str | None = None,
    permissions: list[list[str]] | None = None,
) -> Role:
    role = Role(
        id=role_id or new_id("rol_"),
        name=name,
        description=description,
        permissions=permissions or [],
    )
    data.roles[role.id] = role
    return role


def assign(
    data: TenantData, *, user_id: str, role_id: str, held: set[tuple[str, str]] | None = None
) -> bool:
    """Give a user a role; False when they already hold it (Auth0 treats that as success).

    `held`, the (user, role) pairs already assigned, spares a scan of every assignment per
    call: a seed of 60,000 memberships would otherwise take a minute. It is kept up to date.
    """
    if held is not None:
        if (user_id, role_id) in held:
            return False
        held.add((user_id, role_id))
    elif any(a.user_id == user_id and a.role_id == role_id for a in data.assignments):
        return False
    data.assignments.append(Assignment(user_id=user_id, role_id=role_id, seq=data.next_seq))
    data.next_seq += 1
    return True


def unassign(data: TenantData, *, user_id: str, role_id: str) -> None:
    data.assignments = [
        a for a in data.assignments if not (a.user_id == user_id and a.role_id == role_id)
    ]


def block(data: TenantData, *, user_id: str, blocked: bool) -> None:
    """Block or unblock a user, as the dashboard's "Block" does: a blocked user cannot sign in,
    and the Management API shows `"blocked": true`."""
    user = data.users[user_id]
    user.blocked = blocked
    user.updated_at = now_iso()


def delete_user(data: TenantData, *, user_id: str) -> None:
    """Delete a user and their role assignments; the Management API answers 404 for them."""
    del data.users[user_id]
    data.assignments = [a for a in data.assignments if a.user_id != user_id]
