"""Test-only WSGI app with the Processes routes (delete once server.app.create_app calls processes.api.register)."""

from processes.api import register
from server.app import create_app

app = create_app()
register(app)
