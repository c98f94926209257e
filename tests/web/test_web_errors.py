"""One error handler: JSON under /api/, HTML elsewhere; health endpoints check the database."""

from __future__ import annotations


def test_healthz_and_readyz(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    ready = client.get("/readyz").get_json()
    assert ready["status"] == "ok" and ready["schema"] == ready["head"]


def test_healthz_reports_a_dead_database(tmp_path) -> None:
    from experiments.settings import load_settings
    from web import create_app

    settings = load_settings(
        {
            "LIFTLAB_INSTANCE_DIR": str(tmp_path),
            "LIFTLAB_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        }
    )
    app = create_app({"TESTING": True, "LIFTLAB_SETTINGS": settings})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "error"


def test_api_errors_are_json(client) -> None:
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    body = response.get_json()
    assert body["status"] == 404 and body["error"] == "Not Found"


def test_html_errors_are_pages(client, auth) -> None:
    auth.login()
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "404" in response.get_data(as_text=True)


def test_openapi_document(client) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert "/healthz" in doc["paths"]
