"""`python -m devtenant [--port 8400]`: run the Auth0 emulator; `rotate-key`, `seed-demo`,
`block EMAIL`, `unblock EMAIL` and `delete-user EMAIL` too."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from devtenant.admin import seed_tenant
from devtenant.app import DEFAULT_ROLES_CLAIM, create_app
from devtenant.demo import DEMO_PASSWORD, DEMO_PEOPLE, demo_tenant
from devtenant.store import Tenant, block, delete_user

ROOT = Path(__file__).resolve().parent.parent


USER_COMMANDS = ("block", "unblock", "delete-user")


def user_command(tenant: Tenant, command: str, email: str) -> str:
    """Block, unblock or delete a user of the tenant's state file, as the dashboard would."""
    user = tenant.user_by_email(email)
    if user is None:
        raise SystemExit(f"devtenant: no user has the e-mail {email!r}")
    with tenant.change() as data:
        if command == "delete-user":
            delete_user(data, user_id=user.user_id)
            return f"devtenant: deleted {email} ({user.user_id})"
        block(data, user_id=user.user_id, blocked=command == "block")
    return f"devtenant: {command}ed {email} ({user.user_id})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devtenant", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve",
                        choices=["serve", "rotate-key", "seed-demo", *USER_COMMANDS])  # fmt: skip
    parser.add_argument("email", nargs="?", help="for block, unblock and delete-user")
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEVTENANT_PORT", 8400)))
    parser.add_argument(
        "--state",
        type=Path,
        default=Path(os.environ.get("ATRIUM_VAR_DIR", ROOT / "var")) / "devtenant.json",
        help="the tenant's state file (default: var/devtenant.json)",
    )
    parser.add_argument(
        "--portal-base-url",
        default=os.environ.get("PORTAL_BASE_URL", "http://127.0.0.1:8000"),
        help="for seed-demo: the portal origin its callback and logout URLs point at",
    )
    parser.add_argument(
        "--roles-claim", default=os.environ.get("AUTH0_ROLES_CLAIM", DEFAULT_ROLES_CLAIM)
    )
    args = parser.parse_args(argv)
    issuer = f"http://127.0.0.1:{args.port}/"

    if args.command == "rotate-key":
        kid = Tenant(args.state, issuer).rotate_key()
        print(f"devtenant: signing with new key {kid}; the previous key stays published")
        return
    if args.command in USER_COMMANDS:
        print(user_command(Tenant(args.state, issuer), args.command, args.email or ""))
        return
    if args.command == "seed-demo":
        created = seed_tenant(
            Tenant(args.state, issuer), demo_tenant(portal_base_url=args.portal_base_url)
        )
        print(json.dumps(created, indent=2))
        for email, _, who in DEMO_PEOPLE:
            print(f"  {email:<20} {DEMO_PASSWORD}   {who}")
        return

    app = create_app(state_path=args.state, issuer=issuer, roles_claim=args.roles_claim)
    print(f"devtenant: issuer {issuer} (state in {args.state})", flush=True)
    # Loopback only: this tenant has an unauthenticated admin interface.
    app.run(host="127.0.0.1", port=args.port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
