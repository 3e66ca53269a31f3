"""gunicorn settings: TCP_NODELAY on the listeners (accepted sockets inherit it), so responses never wait on Nagle."""

from __future__ import annotations

import socket
from typing import Any

# No control socket: by default every gunicorn on a host shares ~/.gunicorn/gunicorn.ctl, so one instance could be
# driven through another's socket. We reload and stop with signals instead.
control_socket_disable = True

# The longest request line gunicorn accepts (its default is 4094), so long GET URLs (a CQL2 filter may be 8,000
# characters) reach the app and get its OGC exception JSON. Longer lines still get gunicorn's own HTML 414: gunicorn
# has no setting for the format of the errors it answers before the app.
limit_request_line = 8190


def when_ready(server: Any) -> None:
    """Disable Nagle's algorithm on every listening socket."""
    for listener in server.LISTENERS:
        sock = getattr(listener, "sock", None)
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


graceful_timeout = 10  # running jobs are recorded as failed at once and stop within about a second


def worker_exit(server: Any, worker: Any) -> None:
    """Record this worker's jobs as failed and stop its background work, so shutdown does not wait for them."""
    import sys

    wsgi = sys.modules.get("server.wsgi")
    if wsgi is None:
        return
    from server.app import close_app

    close_app(wsgi.app)
