"""Per-request database session: opened lazily, kept on ``g``, closed at teardown.

Views commit explicitly after their one service call; anything uncommitted is rolled back.
"""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from experiments.db import make_engine, make_session_factory


def init_app(app: Flask) -> None:
    settings = app.config["LIFTLAB_SETTINGS"]
    engine = make_engine(settings.database_url, pool_pre_ping=True)
    app.extensions["liftlab.engine"] = engine
    app.extensions["liftlab.sessions"] = make_session_factory(engine)
    app.teardown_appcontext(close_session)


def get_session() -> Session:
    if "db" not in g:
        g.db = current_app.extensions["liftlab.sessions"]()
    return g.db


def close_session(exc: BaseException | None = None) -> None:
    session: Session | None = g.pop("db", None)
    if session is not None:
        session.rollback()
        session.close()
