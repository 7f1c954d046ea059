"""A second user sees nothing of the first user's job: not in the page, not over REST, not over
the WebSocket."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import JOB_WAIT_MS, Stack, unique_user
from tests.e2e.pages import screenshot, sign_in, upload
from tests.pdf_samples import mixed_pdf

pytestmark = pytest.mark.browser

#: Opens a WebSocket from the page with the page's own token, sends one subscribe frame and
#: returns every frame up to the answer to it (or the close code).
SUBSCRIBE_JS = """async (subscribe) => {
    const session = JSON.parse(sessionStorage.getItem("progress-bridge.session"));
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
    const ws = new WebSocket(url, ["progress.v1.json", `token.${session.token}`]);
    const frames = [];
    return await new Promise((resolve) => {
        ws.onmessage = (message) => {
            const frame = JSON.parse(message.data);
            frames.push(frame);
            if (frame.op === "hello") ws.send(JSON.stringify({...subscribe, ref: "probe"}));
            if (frame.ref === "probe") {
                ws.close();
                resolve({frames, closed: null});
            }
        };
        ws.onclose = (event) => resolve({frames, closed: event.code});
    });
}"""


def answer_to(page: Any, subscribe: dict[str, Any]) -> dict[str, Any]:
    result = page.evaluate(SUBSCRIBE_JS, subscribe)
    assert result["closed"] is None, f"closed with {result['closed']}: {result['frames']}"
    assert result["frames"][0]["op"] == "hello"
    answer: dict[str, Any] = result["frames"][-1]
    return answer


def test_second_user_cannot_see_the_first_users_job(stack: Stack, new_page: Any) -> None:
    alice, bob = unique_user("alice"), unique_user("bob")

    # Alice uploads a PDF and watches it complete.
    alice_page = new_page()
    sign_in(alice_page, alice)
    job_id = upload(alice_page, "alice-private.pdf", mixed_pdf())
    expect(alice_page.get_by_test_id("job-status")).to_have_text("Completed", timeout=JOB_WAIT_MS)
    alice_page.get_by_role("button", name="Export JSON").click()
    expect(alice_page.get_by_role("button", name="Download ")).to_be_visible(timeout=JOB_WAIT_MS)
    export_id = alice_page.locator("li[data-export]").get_attribute("data-export")
    # What Alice may do, so that the refusals below are about Bob, not about a broken API.
    with stack.api(alice) as api:
        assert api.get(f"/api/jobs/{job_id}").status_code == 200
        assert [j["job_id"] for j in api.get("/api/jobs").json()["jobs"]] == [job_id]
        assert api.get(f"/api/jobs/{job_id}/exports/{export_id}").status_code == 200

    # Bob signs in: his job list is empty.
    bob_page = new_page()
    sign_in(bob_page, bob)
    jobs = bob_page.get_by_role("navigation", name="Your jobs")
    expect(jobs.get_by_text("No jobs yet.")).to_be_visible()
    expect(jobs.get_by_role("button")).to_have_count(0)

    # Bob opens Alice's job by its URL: the page refuses to show it, and shows none of it.
    bob_page.goto(f"/#job={job_id}")
    bob_page.reload()  # the hash alone does not reload; the page reads it at start
    expect(bob_page.get_by_role("alert")).to_contain_text("Cannot watch this job")
    expect(bob_page.get_by_text("alice-private")).to_have_count(0)
    expect(bob_page.locator("rect.zone")).to_have_count(0)
    expect(bob_page.get_by_test_id("event-log")).to_have_count(0)
    screenshot(bob_page, "second-user-refused")

    # Bob's own WebSocket: a subscribe to Alice's job or to her room is refused.
    answer = answer_to(bob_page, {"op": "subscribe", "job_id": job_id})
    assert (answer["op"], answer["code"]) == ("error", "forbidden"), answer
    answer = answer_to(bob_page, {"op": "subscribe", "room": f"user:{alice}"})
    assert (answer["op"], answer["code"]) == ("error", "forbidden"), answer
    # ...and naming her job as a resume position in his own room tells him nothing about it.
    snapshot = stack.store.snapshot(job_id)
    assert snapshot is not None
    position = {"epoch": snapshot.epoch, "last_id": "0-0"}
    answer = answer_to(
        bob_page, {"op": "subscribe", "room": f"user:{bob}", "positions": {job_id: position}}
    )
    assert answer["op"] == "subscribed", answer
    assert job_id not in str(answer)

    # Over REST: an empty list, and Alice's job, its exports and its cancel are refused.
    with stack.api(bob) as api:
        assert api.get("/api/jobs").json()["jobs"] == []
        assert api.get(f"/api/jobs/{job_id}").status_code in (403, 404)
        refused = api.post(f"/api/jobs/{job_id}/exports", json={"format": "json"})
        assert refused.status_code in (403, 404), refused.text
        download = api.get(f"/api/jobs/{job_id}/exports/{export_id}")
        assert download.status_code in (403, 404), download.text
        assert api.delete(f"/api/jobs/{job_id}").status_code in (403, 404)
    after = stack.store.snapshot(job_id)
    assert after is not None
    assert after.status == "completed"
    assert [e.export_id for e in after.exports] == [export_id]
