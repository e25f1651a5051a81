"""`POST /webhooks/stripe[/<project id>]`: verify, store once, queue, answer 200 — nothing else.

A plain Django view (not DRF): the raw body must reach signature verification byte for byte, and the intake is
a hot path. Errors use the API's error envelope.
"""

from django.http import HttpRequest, JsonResponse

from core.errors import ApiError, json_error, plain_view
from webhooks.services.receive import stripe_event_receive


@plain_view("POST")  # Stripe signs its deliveries: no cookie, no CSRF check; other methods 405
def stripe_webhook(request: HttpRequest, project_id: str | None = None) -> JsonResponse:
    try:
        event, created = stripe_event_receive(
            project_id=project_id, payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except ApiError as error:
        return json_error(error)
    return JsonResponse({"received": True, "id": event.stripe_event_id, "duplicate": not created})
