"""Payment routes: payment methods, payment intents, charges, refunds, disputes, and three test controls."""

from stripe_emulator.core.routing import Route
from stripe_emulator.payments import responses

ROUTES = [
    Route("POST", "/v1/payment_methods", responses.payment_method_create),
    Route("GET", "/v1/payment_methods", responses.payment_method_list),
    Route("GET", "/v1/payment_methods/{id}", responses.payment_method_retrieve),
    Route("POST", "/v1/payment_methods/{id}", responses.payment_method_update),
    Route("POST", "/v1/payment_methods/{id}/attach", responses.payment_method_attach),
    Route("POST", "/v1/payment_methods/{id}/detach", responses.payment_method_detach),
    Route("GET", "/v1/customers/{customer}/payment_methods", responses.customer_payment_method_list),
    Route("GET", "/v1/customers/{customer}/payment_methods/{id}", responses.customer_payment_method_retrieve),
    Route("POST", "/v1/payment_intents", responses.payment_intent_create),
    Route("GET", "/v1/payment_intents", responses.payment_intent_list),
    Route("GET", "/v1/payment_intents/{id}", responses.payment_intent_retrieve),
    Route("POST", "/v1/payment_intents/{id}", responses.payment_intent_update),
    Route("POST", "/v1/payment_intents/{id}/confirm", responses.payment_intent_confirm),
    Route("POST", "/v1/payment_intents/{id}/cancel", responses.payment_intent_cancel),
    Route("GET", "/v1/charges", responses.charge_list),
    Route("GET", "/v1/charges/{id}", responses.charge_retrieve),
    Route("POST", "/v1/charges/{id}", responses.charge_update),
    Route("GET", "/v1/charges/{id}/refunds", responses.charge_refund_list),
    Route("POST", "/v1/refunds", responses.refund_create),
    Route("GET", "/v1/refunds", responses.refund_list),
    Route("GET", "/v1/refunds/{id}", responses.refund_retrieve),
    Route("POST", "/v1/refunds/{id}", responses.refund_update),
    Route("POST", "/v1/refunds/{id}/cancel", responses.refund_cancel),
    Route("POST", "/v1/test_helpers/refunds/{id}/expire", responses.refund_expire),
    Route("GET", "/v1/disputes", responses.dispute_list),
    Route("GET", "/v1/disputes/{id}", responses.dispute_retrieve),
    Route("POST", "/v1/disputes/{id}", responses.dispute_update),
    Route("POST", "/v1/disputes/{id}/close", responses.dispute_close),
    Route(
        "POST",
        "/_emulator/payment_intents/{id}/authenticate",
        responses.payment_intent_authenticate_control,
        auth=False,
    ),
    Route("POST", "/_emulator/disputes/{id}/resolve", responses.dispute_resolve_control, auth=False),
    Route("POST", "/_emulator/refunds/{id}/settle", responses.refund_settle_control, auth=False),
]
