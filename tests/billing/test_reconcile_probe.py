"""`manage.py reconcile --project` first asks the Stripe account of the project given whether it answers, not the
platform's: a project on its own account is reconciled against that account, whatever the platform's key is."""

import pytest
from django.core.management import CommandError, call_command

from billing.models import ReconciliationRun
from stripe_emulator.server import serve_in_thread
from stripe_gateway.client import install_http_client
from tests.projects.factories import ProjectFactory


@pytest.mark.django_db
def test_a_project_on_its_own_account_is_probed_with_its_own_key(stripe_emulator, settings):
    """No platform key is configured (only the project's own): with its Stripe stopped, the command says so and
    records no run, as it does for the platform's account."""
    project = ProjectFactory(slug="own", stripe_secret_key="sk_test_own_account")
    settings.STRIPE_SECRET_KEY = ""
    server = serve_in_thread(stripe_emulator)
    settings.STRIPE_API_BASE = server.url
    install_http_client(None)
    server.shutdown()  # the emulator stopped: nothing listens at its address any more
    server.server_close()

    with pytest.raises(CommandError) as refused:
        call_command("reconcile", "--project", project.slug)

    assert str(refused.value) == (
        f"Stripe's API at {server.url} did not answer (provider_unavailable): nothing was reconciled and no run "
        "recorded. Start Stripe's emulator (`make demo` starts one), or set STRIPE_API_BASE to where it runs."
    )
    assert ReconciliationRun.objects.count() == 0
