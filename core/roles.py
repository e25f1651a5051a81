"""Operator roles of the back office, as Django groups (created by a migration, kept in step by `roles_sync`).

- `support`: reads everything, replays Stripe events, grants and revokes entitlements
  (`entitlements.grant_entitlement`: grant, lift a revocation; `entitlements.revoke_entitlement`: revoke, end a
  grant, end what a payment bought);
- `finance`: support, plus refunds and invoice corrections (`billing.correct_invoice`: void, mark uncollectible);
- `admin`: every permission of Tollgate's apps and of user management (among them running a reconciliation
  and adopting a Stripe account into a project, `billing.run_adoption`: they write a project's mirror from
  Stripe wholesale, so they are no support or finance action; and confirming the money moves agents ask for,
  `agents.decide_moveconfirmation`).

A permission named here must exist when `roles_sync` runs: a new one needs its model's migration and then a core
migration that runs `roles_sync` again (as `core/migrations/0003_operator_roles_entitlements.py` does).
"""

from typing import Any

OUR_APPS = (
    "core",
    "projects",
    "customers",
    "catalog",
    "events",
    "entitlements",
    "billing",
    "webhooks",
    "agents",
    "backoffice",
)
SUPPORT_EXTRA = (
    "webhooks.replay_stripeevent",
    "entitlements.grant_entitlement",
    "entitlements.revoke_entitlement",
)
FINANCE_EXTRA = ("billing.refund_payment", "billing.correct_invoice")


def roles_sync(apps: Any) -> None:
    """Creates or updates the three groups from the permissions that exist (safe to run again)."""
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    ours = permission_model.objects.filter(content_type__app_label__in=OUR_APPS)

    def by_name(names: tuple[str, ...]) -> list[Any]:
        found = []
        for name in names:
            app_label, codename = name.split(".")
            found.extend(ours.filter(content_type__app_label=app_label, codename=codename))
        return found

    views = list(ours.filter(codename__startswith="view_"))
    support, _ = group_model.objects.get_or_create(name="support")
    support.permissions.set([*views, *by_name(SUPPORT_EXTRA)])
    finance, _ = group_model.objects.get_or_create(name="finance")
    finance.permissions.set([*views, *by_name(SUPPORT_EXTRA), *by_name(FINANCE_EXTRA)])
    admin, _ = group_model.objects.get_or_create(name="admin")
    admin.permissions.set(
        list(ours)
        + list(permission_model.objects.filter(content_type__app_label__in=("auth", "admin", "sessions")))
    )


def roles_sync_with_new_permissions(apps: Any) -> None:
    """`roles_sync` from a migration that brings new permissions: Django creates permissions after all
    migrations have run, so they are created first, for the groups to hold them now."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles_sync(apps)


def roles_extend(apps: Any, app_labels: tuple[str, ...]) -> None:
    """Gives the roles the permissions of apps whose models arrived after the roles were made, as `roles_sync`
    would have, without touching what the roles hold of the other apps."""
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    theirs = permission_model.objects.filter(content_type__app_label__in=app_labels)
    extra = [
        permission
        for name in SUPPORT_EXTRA
        if name.split(".")[0] in app_labels
        for permission in theirs.filter(
            content_type__app_label=name.split(".")[0], codename=name.split(".")[1]
        )
    ]
    views = list(theirs.filter(codename__startswith="view_"))
    for role, permissions in (
        ("support", [*views, *extra]),
        ("finance", [*views, *extra]),
        ("admin", list(theirs)),
    ):
        group = group_model.objects.filter(name=role).first()
        if group is not None:
            group.permissions.add(*permissions)


def roles_grant(apps: Any, name: str, roles: tuple[str, ...]) -> None:
    """Gives the roles that exist one permission (`app.codename`) that arrived after them, as `roles_sync` would
    have (its app's permissions are created first: Django makes them only after all migrations ran)."""
    from core.migration_tools import permissions_create

    app_label, codename = name.split(".")
    permissions_create(apps, app_label)
    permission = apps.get_model("auth", "Permission").objects.get(
        content_type__app_label=app_label, codename=codename
    )
    for group in apps.get_model("auth", "Group").objects.filter(name__in=roles):
        group.permissions.add(permission)
