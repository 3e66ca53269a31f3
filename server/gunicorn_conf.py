"""gunicorn settings: TCP_NODELAY on the listeners (accepted sockets inherit it), so responses never wait on Nagle."""

from __future__ import annotations

import socket
from typing import Any

# No control socket: by default every gunicorn on a host shares ~/.gunicorn/gunicorn.ctl, so one instance could be
# driven through another's socket. We reload and stop with signals instead.
control_socket_disable = True


def when_ready(server: Any) -> None:
    """Disable Nagle's algorithm on every listening socket."""
    for listener in server.LISTENERS:
        sock = getattr(listener, "sock", None)
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
