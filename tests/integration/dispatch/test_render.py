"""`dispatch render` shows what the dispatcher creates, compared with what it made in the double."""

from __future__ import annotations

from raibid_api.api.deps import AppState
from raibid_api.config import load_settings
from raibid_api.dispatch.manifests import AgentJobTemplate, agent_job_name
from raibid_api.dispatch.render import REDACTED_CLAIM, UID_PLACEHOLDER, render_agent_objects
from tests.support.dispatch import DispatcherFactory, trigger
from tests.support.kube_double import KubeDouble

SERVER_SET = ("uid", "resourceVersion", "generation", "creationTimestamp")


async def test_render_prints_the_objects_a_dispatcher_pass_creates(
    state: AppState, kube: KubeDouble, dispatcher_for: DispatcherFactory
) -> None:
    [job_id] = await trigger(state)
    await dispatcher_for().dispatch_once()
    template = AgentJobTemplate.from_settings(load_settings(None, dispatch={"mode": "kubernetes"}))
    job, secret = await render_agent_objects(template, job_id, 1)

    name = agent_job_name(job_id, 1)
    created = kube.job(name)
    assert created["spec"]["template"]["spec"] == job["spec"]["template"]["spec"]
    # the API server adds its own labels to the pod template (controller-uid, job-name)
    rendered_labels = job["spec"]["template"]["metadata"]["labels"].items()
    assert rendered_labels <= created["spec"]["template"]["metadata"]["labels"].items()
    for key in ("backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        assert created["spec"][key] == job["spec"][key]
    assert {k: v for k, v in created["metadata"].items() if k not in SERVER_SET} == job["metadata"]

    stored = kube.secrets[("ci", name)]
    owner = dict(secret["metadata"]["ownerReferences"][0])
    assert owner.pop("uid") == UID_PLACEHOLDER
    assert stored["metadata"]["ownerReferences"] == [owner | {"uid": created["metadata"]["uid"]}]
    assert {k: v for k, v in stored["metadata"].items()
            if k not in (*SERVER_SET, "ownerReferences")} == {
        k: v for k, v in secret["metadata"].items() if k != "ownerReferences"}  # fmt: skip
    assert secret["stringData"] == {"token": REDACTED_CLAIM}
    assert set(stored["data"]) == {"token"}
    assert kube.secret_value(name) != REDACTED_CLAIM
