"""Usage, entitlements and credits API (API.md "Usage, entitlements, credits").

`GET /entitlements/check` is the hot path of every tenant request: it parses its three query parameters by hand
and renders a plain dict, and the rate limiter reads the customer's snapshot in its own round trip
(`read_ahead_keys`), so that a warm answer costs no SQL and one Redis round trip in all. Consume and release
read ahead the same way.
The other views follow the house pattern (nested Input serializers, services for writes).

The package holds one module per part: `check` (the hot path: check, list, consume, release), `grants` (and
revocations), `usage`, `credits` and `settings` (a project's entitlement settings), with what they share in
`params`.
"""
