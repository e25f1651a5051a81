"""`manage.py runserver` in development and under `make demo`: Django's development server, answering as
production's gunicorn does wherever a client or a browser can tell the difference.

- Static files come through WhiteNoise, as in production (`whitenoise.runserver_nostatic` turns runserver's own
  static handler off; in DEBUG WhiteNoise finds the files in the apps, no collectstatic needed), with the same
  headers: `Access-Control-Allow-Origin: *` is what lets another origin's page load
  `/static/tollgate/pricing.js` as a module script (runserver's handler sent none, and the browser refused it).
- Each answer leaves in one write, on a socket with TCP_NODELAY (gunicorn sets it too). Django's server wrote the
  status line, the date, the server name, the headers and the body in separate sends without it: Nagle's
  algorithm held everything after the first until the client acknowledged it, and a client on a kept-alive
  connection delays that ACK by ~40 ms, so every call after the first few took ~40 ms whatever the view cost.
"""

import socket
from typing import Any

from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer
from whitenoise.runserver_nostatic.management.commands.runserver import (  # type: ignore[import-untyped]
    Command as WhiteNoiseRunserver,
)


class OneWriteRequestHandler(WSGIRequestHandler):
    # A buffered socket file: the status line, the headers and the body's first chunk go out in one send (wsgiref
    # flushes after each body chunk, so a streamed answer still leaves chunk by chunk).
    wbufsize = -1

    def handle_one_request(self) -> None:
        super().handle_one_request()
        self.wfile.flush()  # an answer without a body, or an error the handler wrote itself, leaves now too


class DevelopmentServer(WSGIServer):
    def __init__(self, server_address: Any, handler_class: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(server_address, OneWriteRequestHandler, *args, **kwargs)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


class Command(WhiteNoiseRunserver):  # its base, runserver as the apps after it define it, is chosen at import
    server_cls = DevelopmentServer
