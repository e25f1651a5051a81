"""Customer portal: ``billing_portal.configuration`` (what the portal lets a customer do) and
``billing_portal.session`` (a link to the hosted portal page for one customer).

The hosted page (:mod:`.pages`) acts through :class:`~stripe_emulator.subscriptions.SubscriptionsBackend`,
exactly as the API does, so the same events fire. A session created while the account has no configuration
gets a default one (invoice history, payment method update, cancel at period end; plan switching off), where
Stripe would ask you to save portal settings in the Dashboard first.
"""

from __future__ import annotations

from typing import Any

from stripe_emulator.core import ids
from stripe_emulator.core.account import BaseBackend
from stripe_emulator.core.errors import InvalidRequestError
from stripe_emulator.core.store import StripeObject, clone
from stripe_emulator.customers.models import CustomersBackend
from stripe_emulator.subscriptions.settings import public_url

UPDATABLE = ("price", "quantity", "promotion_code")


def default_features() -> dict[str, Any]:
    return {
        "customer_update": {"allowed_updates": [], "enabled": False},
        "invoice_history": {"enabled": False},
        "payment_method_update": {"enabled": False, "payment_method_configuration": None},
        "subscription_cancel": {
            "cancellation_reason": {"enabled": False, "options": []},
            "enabled": False,
            "mode": "at_period_end",
            "proration_behavior": "none",
        },
        # Stripe's default: pausing off, one one-month option (``duration[type]=interval_options``).
        "subscription_pause": {
            "duration": {
                "interval_options": [{"interval": "month", "interval_count": 1}],
                "type": "interval_options",
            },
            "enabled": False,
        },
        "subscription_update": {
            "billing_cycle_anchor": None,
            "default_allowed_updates": [],
            "enabled": False,
            "products": [],
            "proration_behavior": "none",
            "schedule_at_period_end": {"conditions": []},
            "trial_update_behavior": "end_trial",
        },
    }


def merge_features(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = clone(current)
    for feature, values in changes.items():
        merged[feature].update(values)
    return merged


class PortalBackend(BaseBackend):
    def configuration_create(
        self,
        *,
        features: dict[str, Any],
        business_profile: dict[str, Any] | None = None,
        default_return_url: str | None = None,
        is_default: bool = False,
        metadata: dict[str, str] | None = None,
        name: str | None = None,
    ) -> StripeObject:
        self._check_products(features)
        now = self.now()
        config: StripeObject = {
            "id": ids.id_for("billing_portal.configuration"),
            "object": "billing_portal.configuration",
            "active": True,
            "application": None,
            "business_profile": {
                "headline": None,
                "privacy_policy_url": None,
                "terms_of_service_url": None,
                **(business_profile or {}),
            },
            "created": now,
            "default_return_url": default_return_url,
            "features": merge_features(default_features(), features),
            "is_default": False,
            "livemode": False,
            "login_page": {"enabled": False, "url": None},
            "metadata": metadata or {},
            "name": name,
            "updated": now,
        }
        self.store.insert(config)
        if is_default or self.default_configuration() is None:
            self._make_default(config)
        self.emit("billing_portal.configuration.created", config)
        return config

    def _check_products(self, features: dict[str, Any]) -> None:
        update = features.get("subscription_update") or {}
        for n, entry in enumerate(update.get("products") or []):
            product = self.store.require(
                "product", entry["product"], param=f"features[subscription_update][products][{n}][product]"
            )
            for m, price_id in enumerate(entry["prices"]):
                price = self.store.require(
                    "price", price_id, param=f"features[subscription_update][products][{n}][prices][{m}]"
                )
                if price["product"] != product["id"]:
                    raise InvalidRequestError(
                        f"The price `{price_id}` does not belong to the product `{product['id']}`.",
                        param=f"features[subscription_update][products][{n}][prices][{m}]",
                    )

    def _make_default(self, config: StripeObject) -> None:
        for other in self.store.iter_type("billing_portal.configuration"):
            other["is_default"] = other["id"] == config["id"]

    def default_configuration(self) -> StripeObject | None:
        for config in self.store.iter_type("billing_portal.configuration"):
            if config["is_default"]:
                return config
        return None

    def configuration_require(self, config_id: str, *, param: str | None = "id") -> StripeObject:
        return self.store.require("billing_portal.configuration", config_id, param=param)

    def configuration_update(self, config_id: str, changes: dict[str, Any]) -> StripeObject:
        config = self.configuration_require(config_id)
        if "features" in changes:
            self._check_products(changes["features"])
        before = clone(config)
        for key, value in changes.items():
            if key == "features":
                config["features"] = merge_features(config["features"], value)
            elif key == "business_profile":
                config["business_profile"] = {**config["business_profile"], **value}
            elif key == "is_default":
                if value:
                    self._make_default(config)
            else:
                config[key] = value
        if config != before:
            config["updated"] = self.now()
        self.emit_update("billing_portal.configuration.updated", config, before)
        return config

    def configuration_list(
        self, *, active: bool | None = None, is_default: bool | None = None
    ) -> list[StripeObject]:
        return self.store.newest_first(
            "billing_portal.configuration",
            lambda c: (
                (active is None or c["active"] == active)
                and (is_default is None or c["is_default"] == is_default)
            ),
        )

    def session_create(
        self,
        *,
        customer: str,
        return_url: str | None = None,
        configuration: str | None = None,
        locale: str | None = None,
    ) -> StripeObject:
        self.account.backend(CustomersBackend).customer_require(customer, param="customer")
        if configuration is not None:
            config = self.configuration_require(configuration, param="configuration")
            if not config["active"]:
                raise InvalidRequestError("This configuration is not active.", param="configuration")
        else:
            config = self.default_configuration() or self.configuration_create(
                features={
                    "invoice_history": {"enabled": True},
                    "payment_method_update": {"enabled": True},
                    "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
                },
                is_default=True,
            )
        return_url = return_url or config["default_return_url"]
        if not return_url:
            raise InvalidRequestError(
                "Missing required param: return_url (the configuration has no default_return_url).",
                code="parameter_missing",
                param="return_url",
            )
        session_id = ids.id_for("billing_portal.session")
        session: StripeObject = {
            "id": session_id,
            "object": "billing_portal.session",
            "configuration": config["id"],
            "created": self.now(),
            "customer": customer,
            "customer_account": None,
            "flow": None,
            "livemode": False,
            "locale": locale,
            "on_behalf_of": None,
            "return_url": return_url,
            "url": public_url(self.account, f"/portal/{session_id}"),
        }
        self.store.insert(session)
        self.emit("billing_portal.session.created", session)
        return session
