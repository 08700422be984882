"""The dispatcher against real Redis and the Kubernetes API double: creation, failures, cleanup."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lightkube import KubeConfig

from raibid_api.api.deps import AppState
from raibid_api.config import load_settings
from raibid_api.dispatch.cluster import LightkubeClusterApi
from raibid_api.dispatch.dispatcher import KubernetesDispatcher, PassResult
from raibid_api.dispatch.manifests import AgentJobTemplate, agent_job, agent_job_name
from raibid_api.dispatch.sources import ServiceJobSource
from raibid_api.domain.jobs import format_time, parse_job_id
from raibid_api.errors import ServiceUnavailableError
from tests.support.dispatch import CLAIM_KEY, DispatcherFactory, claim, trigger
from tests.support.factories import ManualClock
from tests.support.kube_double import KubeDouble
from tests.support.logs import LogEvents
from tests.support.polling import eventually

IMAGE_PULL = {
    "waiting": {
        "reason": "ImagePullBackOff",
        "message": 'Back-off pulling image "ghcr.io/raibid-ci/raibid-api:9.9.9"',
    }
}


def names(job_ids: list[str], attempt: int = 1) -> list[str]:
    return sorted(agent_job_name(job_id, attempt) for job_id in job_ids)


async def test_each_pending_job_gets_one_agent_job_with_the_manifest_body(
    state: AppState, kube: KubeDouble, dispatcher_for: DispatcherFactory
) -> None:
    ids = await trigger(state, 3)
    result = await dispatcher_for().dispatch_once()
    assert sorted(result.created) == kube.job_names() == names(ids)
    template = AgentJobTemplate.from_settings(load_settings(None, dispatch={"mode": "kubernetes"}))
    stored = kube.job(agent_job_name(ids[0], 1))
    expected = agent_job(template, ids[0], 1)
    assert stored["spec"]["template"]["spec"] == expected["spec"]["template"]["spec"]
    assert stored["metadata"]["labels"] == expected["metadata"]["labels"]


async def test_no_agent_job_is_created_while_idle_ones_cover_the_queue(
    state: AppState, kube: KubeDouble, dispatcher_for: DispatcherFactory
) -> None:
    await trigger(state, 2)
    dispatcher = dispatcher_for()
    await dispatcher.dispatch_once()
    posts = sum(1 for method, *_ in kube.requests if method == "POST")
    again = await dispatcher.dispatch_once()
    assert again.created == []
    assert sum(1 for method, *_ in kube.requests if method == "POST") == posts


async def test_two_replicas_dispatching_at_once_create_each_agent_job_once(
    state: AppState, kube: KubeDouble, dispatcher_for: DispatcherFactory
) -> None:
    ids = await trigger(state, 4)
    first, second = dispatcher_for(), dispatcher_for()
    results = await asyncio.gather(first.dispatch_once(), second.dispatch_once())
    created = [name for result in results for name in result.created]
    assert sorted(created) == kube.job_names() == names(ids)
    later = await asyncio.gather(first.dispatch_once(), second.dispatch_once())
    assert [r.created for r in later] == [[], []]
    assert kube.job_names() == names(ids)


async def test_a_job_arriving_while_every_agent_is_busy_gets_a_new_agent_job(
    state: AppState, kube: KubeDouble, dispatcher_for: DispatcherFactory
) -> None:
    dispatcher = dispatcher_for()
    [first] = await trigger(state)
    await dispatcher.dispatch_once()
    assert await claim(state, agent_job_name(first, 1)) == first  # its agent is now busy
    [second] = await trigger(state)
    result = await dispatcher.dispatch_once()
    assert result.created == [agent_job_name(second, 1)]


async def test_an_agent_job_that_ended_while_its_job_waits_is_replaced(
    state: AppState, kube: KubeDouble, dispatcher_for: DispatcherFactory
) -> None:
    dispatcher = dispatcher_for()
    [job_id] = await trigger(state)
    name = agent_job_name(job_id, 1)
    await dispatcher.dispatch_once()
    kube.finish_job(name, succeeded=True)  # its agent ran another job (claims follow the queue)
    assert (await dispatcher.dispatch_once()).deleted == [name]
    assert (await dispatcher.dispatch_once()).created == [name]
    assert kube.job(name)["status"] == {}  # a fresh Job, not the finished one


async def test_failed_agent_job_is_retried_after_the_delay(
    state: AppState, kube: KubeDouble, dispatcher_for: DispatcherFactory, clock: ManualClock
) -> None:
    dispatcher = dispatcher_for()
    [job_id] = await trigger(state)
    name = agent_job_name(job_id, 1)
    await dispatcher.dispatch_once()
    kube.finish_job(
        name,
        succeeded=False,
        at=format_time(clock.now_ms()),
        reason="BackoffLimitExceeded",
        message="Job has reached the specified backoff limit",
    )
    assert await dispatcher.dispatch_once() == PassResult(created=[], deleted=[])
    clock.advance(30)
    assert (await dispatcher.dispatch_once()).deleted == [name]
    assert (await dispatcher.dispatch_once()).created == [name]


async def test_agent_job_that_failed_before_claiming_is_logged_once_with_its_pod_reason(
    state: AppState,
    kube: KubeDouble,
    dispatcher_for: DispatcherFactory,
    captured_logs: LogEvents,
) -> None:
    dispatcher = dispatcher_for()
    [job_id] = await trigger(state)
    name = agent_job_name(job_id, 1)
    await dispatcher.dispatch_once()
    kube.run_pod(
        name,
        {"terminated": {"reason": "Error", "exitCode": 2, "message": "error: no such option"}},
        phase="Failed",
    )
    kube.finish_job(
        name,
        succeeded=False,
        reason="BackoffLimitExceeded",
        message="Job has reached the specified backoff limit",
    )
    await dispatcher.dispatch_once()
    await dispatcher.dispatch_once()
    [report] = captured_logs.warnings_about("agent Job failed before its agent claimed a job")
    assert report["agent_job"] == name
    assert report["job_id"] == job_id
    assert report["reason"] == (
        "BackoffLimitExceeded: Job has reached the specified backoff limit; "
        "container agent Error (exit code 2): error: no such option"
    )


async def test_agent_job_that_died_holding_a_job_names_that_job(
    state: AppState,
    kube: KubeDouble,
    dispatcher_for: DispatcherFactory,
    captured_logs: LogEvents,
) -> None:
    dispatcher = dispatcher_for()
    [job_id] = await trigger(state)
    name = agent_job_name(job_id, 1)
    await dispatcher.dispatch_once()
    await claim(state, name)
    kube.run_pod(name, {"terminated": {"reason": "OOMKilled", "exitCode": 137}}, phase="Failed")
    kube.finish_job(name, succeeded=False, reason="BackoffLimitExceeded")
    await dispatcher.dispatch_once()
    [report] = captured_logs.warnings_about(
        "agent Job failed while its agent held a job; its lease will run out"
    )
    assert report["held_job_id"] == job_id
    assert "OOMKilled (exit code 137)" in report["reason"]


async def test_pod_stuck_pulling_its_image_is_logged_once_and_left_to_retry(
    state: AppState,
    kube: KubeDouble,
    dispatcher_for: DispatcherFactory,
    captured_logs: LogEvents,
) -> None:
    dispatcher = dispatcher_for()
    [job_id] = await trigger(state)
    name = agent_job_name(job_id, 1)
    await dispatcher.dispatch_once()
    pod = kube.run_pod(name, IMAGE_PULL)
    pulling = {"waiting": {"reason": "ErrImagePull", "message": "manifest unknown"}}
    results = [await dispatcher.dispatch_once()]
    # the kubelet alternates between pulling and backing off: still one problem
    for state_now in (pulling, IMAGE_PULL, pulling):
        pod["status"]["containerStatuses"][0]["state"] = state_now
        results.append(await dispatcher.dispatch_once())
    [report] = captured_logs.warnings_about("agent pod cannot start")
    assert (
        report["reason"]
        == 'ImagePullBackOff: Back-off pulling image "ghcr.io/raibid-ci/raibid-api:9.9.9"'
    )
    assert report["agent_job"] == name
    assert all(r.created == r.deleted == [] for r in results)  # one agent per job, even stuck
    assert kube.job_names() == [name]


async def test_finished_agent_jobs_past_their_ttl_are_deleted_with_their_pods(
    state: AppState, kube: KubeDouble, dispatcher_for: DispatcherFactory, clock: ManualClock
) -> None:
    dispatcher = dispatcher_for(ttl_seconds_after_finished=60)
    [job_id] = await trigger(state)
    name = agent_job_name(job_id, 1)
    await dispatcher.dispatch_once()
    await claim(state, name)
    kube.run_pod(name, {"terminated": {"reason": "Completed", "exitCode": 0}}, phase="Succeeded")
    kube.finish_job(name, succeeded=True, at=format_time(clock.now_ms()))
    clock.advance(60 + 59)  # the TTL controller's turn: it would delete at 60 s
    assert (await dispatcher.dispatch_once()).deleted == []
    clock.advance(1)
    assert (await dispatcher.dispatch_once()).deleted == [name]
    assert kube.jobs == {}
    assert kube.pods == {}


async def test_refusing_api_fails_the_pass_with_service_unavailable(
    state: AppState, kube: KubeDouble, dispatcher_for: DispatcherFactory
) -> None:
    await trigger(state)
    dispatcher = dispatcher_for()
    kube.forbidden = True
    with pytest.raises(ServiceUnavailableError, match="403 Forbidden"):
        await dispatcher.dispatch_once()
    with pytest.raises(ServiceUnavailableError):
        await dispatcher.ping()
    assert kube.jobs == {}


async def test_dispatch_loop_survives_a_refusing_api_and_dispatches_once_it_answers(
    state: AppState,
    kube: KubeDouble,
    kubeconfig: Path,
    clock: ManualClock,
    captured_logs: LogEvents,
) -> None:
    [job_id] = await trigger(state)
    kube.forbidden = True
    api = LightkubeClusterApi.connect("ci", KubeConfig.from_file(kubeconfig))
    template = AgentJobTemplate.from_settings(load_settings(None, dispatch={"mode": "kubernetes"}))
    dispatcher = KubernetesDispatcher(
        api, ServiceJobSource(state.jobs), template, clock, CLAIM_KEY, interval=0.02
    )
    loop = asyncio.create_task(dispatcher.run())
    try:
        await eventually(
            lambda: bool(captured_logs.warnings_about("dispatch pass skipped")), 5, "a skipped pass"
        )
        kube.forbidden = False
        await eventually(
            lambda: kube.job_names() == [agent_job_name(job_id, 1)], 5, "the agent Job"
        )
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
    assert "403 Forbidden" in captured_logs.warnings_about("dispatch pass skipped")[0]["reason"]


async def test_cancelling_a_job_deletes_its_running_agent_job_with_its_pod_and_secret(
    state: AppState, kube: KubeDouble, dispatcher_for: DispatcherFactory
) -> None:
    [job_id, other] = await trigger(state, 2)
    dispatcher = dispatcher_for()
    await dispatcher.dispatch_once()
    name = agent_job_name(job_id, 1)
    pod = kube.run_pod(name, {"running": {"startedAt": "2026-03-01T12:00:00Z"}}, phase="Running")
    await state.jobs.cancel(parse_job_id(job_id))

    result = await dispatcher.dispatch_once()

    assert result.deleted == [name]
    assert kube.job_names() == [agent_job_name(other, 1)]
    assert ("ci", pod["metadata"]["name"]) not in kube.pods
    assert ("ci", name) not in kube.secrets
    (delete,) = [query for method, _, query in kube.requests if method == "DELETE"]
    assert delete.get("propagationPolicy") == "Background"
