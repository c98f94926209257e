"""``liftlab serve``: the admin and API on the embedded server (gunicorn in production)."""

from __future__ import annotations

import click


def run_server(host: str, port: int) -> None:
    from werkzeug.serving import run_simple

    from web import create_app

    app = create_app()
    click.echo(f"serving the admin on http://{host}:{port}/  (Ctrl-C stops)")
    # threaded werkzeug is enough for the embedded, single-team mode; production runs
    # `gunicorn -c platform/gunicorn.conf.py "web:create_app()"`
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
def serve(host: str, port: int) -> None:
    """Serve the admin and the REST API."""
    run_server(host, port)
