"""The WSGI application gunicorn serves (`bench.djstripe_site.wsgi`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.djstripe_site.settings")
application = get_wsgi_application()
