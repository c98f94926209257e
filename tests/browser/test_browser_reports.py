"""End to end in headless chromium: an analyst queues a report from its page, the report worker
builds it, and the page, refreshing itself while the job waits, shows the report."""

from __future__ import annotations

import threading

KEY = "browser-report"


def test_an_analyst_queues_a_report_and_the_page_shows_it_when_built(
    app, login, report_experiment
) -> None:  # type: ignore[no-untyped-def]
    from experiments.jobs.report_worker import drain

    sessions = app.extensions["liftlab.sessions"]
    with sessions.begin() as session:
        report_experiment(session, KEY)
    page = login("analyst@example.com", "analyst")
    page.goto(f"/experiments/{KEY}/report")
    assert page.locator("#no-report").is_visible()
    page.get_by_label("Suppress segments smaller than (k)").fill("60")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_selector("text=Report queued (job 1)")
    job = page.locator("#report-job")
    assert job.get_attribute("data-status") == "queued"
    assert "Waiting for the report worker" in job.inner_text()

    artifact_dir = app.config["LIFTLAB_SETTINGS"].artifact_dir
    worker = threading.Thread(target=drain, args=(sessions, artifact_dir, "browser-worker"))
    worker.start()
    worker.join()
    # no reload by the test: the page's own refresh brings the report in
    page.wait_for_selector("#report-downloads", timeout=30_000)
    assert page.locator("#report-job").get_attribute("data-status") == "done"
    assert "segments under 60 users suppressed" in page.locator("#report-summary").inner_text()
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV (zip)").click()
    assert download.value.suggested_filename.endswith(".zip")
