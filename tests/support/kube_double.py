"""A protocol-faithful double of the Kubernetes API server: batch/v1 Jobs, v1 pods and Secrets.

It serves what the dispatcher calls, with the real paths, verbs and answer shapes
(``kind: Status`` errors with ``reason``/``code``/``details``, ``JobList`` with ``continue``):
``POST``/``GET``/``LIST``/``DELETE`` of Jobs in a namespace and ``LIST`` of pods, label
selectors (``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``), ``limit``/``continue`` paging, bearer-token
authentication (401), an RBAC refusal switch (403), ``AlreadyExists`` (409), ``NotFound`` (404),
a namespace mismatch (400), and ``Invalid`` (422) for a bad name or a body the official schema
(kubernetes-validate, strict) rejects. Created Jobs get the defaults and labels the API server
adds. ``POST`` of Secrets stores ``stringData`` as base64 ``data``, as the API server does.
Deleting a Job deletes its pods and the Secrets it owns (``ownerReferences``, the garbage
collector's work) only with ``propagationPolicy`` ``Background`` or ``Foreground``: the API's
default for batch/v1 Jobs orphans them, which strips the owner reference from each dependent.

``POST /apis/authentication.k8s.io/v1/tokenreviews`` answers as the real TokenReview API does
for the projected ServiceAccount tokens `issue_pod_token` hands out: a token is authenticated
only while its pod exists, only for one of the audiences it was issued for (the review's
``spec.audiences``, the API server's own audience when empty), and the answer carries
``status.user`` (``system:serviceaccount:<ns>:<name>``, the account's uid, its groups, and the
``authentication.kubernetes.io/pod-name``/``pod-uid``/``credential-id`` extras) and the
audiences that matched; anything else is ``authenticated: false`` with an ``error``.

No controller runs: a test plays the Job controller and the kubelet with `run_pod` and
`finish_job`. Watches are not served (the dispatcher polls).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.kube_objects import (
    NAMESPACE_MISMATCH,
    NOW,
    Obj,
    SelectorError,
    finished_status,
    invalid_job,
    invalid_secret,
    job_details,
    labels_of,
    matches,
    pod_of,
    status,
    stored_secret,
    with_defaults,
    write_kubeconfig,
)
from tests.support.polling import eventually

API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"  # k3s's default --api-audiences


@dataclass
class KubeDouble:
    """The API server of one cluster with one set of namespaces, on a loopback port."""

    token: str = "double-token-0123456789"
    namespaces: set[str] = field(default_factory=lambda: {"ci"})
    jobs: dict[tuple[str, str], Obj] = field(default_factory=dict)
    pods: dict[tuple[str, str], Obj] = field(default_factory=dict)
    secrets: dict[tuple[str, str], Obj] = field(default_factory=dict)
    # projected ServiceAccount tokens: token -> (namespace, pod name, pod uid, account, audiences)
    pod_tokens: dict[str, tuple[str, str, str, str, tuple[str, ...]]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    forbidden: bool = False
    port: int = 0
    _versions: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    # ---- the HTTP API -------------------------------------------------------------------------

    def app(self) -> Starlette:
        """The ASGI app serving this cluster's API."""
        base = "/apis/batch/v1/namespaces/{namespace}/jobs"
        return Starlette(
            routes=[
                Route(base, self._jobs_collection, methods=["GET", "POST"]),
                Route(base + "/{name}", self._job_item, methods=["GET", "DELETE"]),
                Route("/api/v1/namespaces/{namespace}/pods", self._pod_list, methods=["GET"]),
                Route(
                    "/api/v1/namespaces/{namespace}/secrets", self._secret_create, methods=["POST"]
                ),
                Route(
                    "/apis/authentication.k8s.io/v1/tokenreviews",
                    self._token_review,
                    methods=["POST"],
                ),
            ]
        )

    def _refusal(self, request: Request, verb: str, resource: str) -> JSONResponse | None:
        self.requests.append((request.method, request.url.path, dict(request.query_params)))
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return status(401, "Unauthorized", "Unauthorized")
        if self.forbidden:
            namespace = request.path_params.get("namespace")
            where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            message = (
                f'{resource} is forbidden: User "system:serviceaccount:ci:raibid-api" cannot '
                f'{verb} resource "{resource.split(".")[0]}" {where}'
            )
            return status(403, "Forbidden", message, {"kind": resource.split(".")[0]})
        if request.query_params.get("watch") in ("true", "1"):
            return status(405, "MethodNotAllowed", "this double serves no watches")
        return None

    async def _jobs_collection(self, request: Request) -> JSONResponse:
        verb = "create" if request.method == "POST" else "list"
        refused = self._refusal(request, verb, "jobs.batch")
        if refused is not None:
            return refused
        namespace = request.path_params["namespace"]
        if request.method == "POST":
            return self._create_job(namespace, await request.json())
        return self._list(request, "JobList", "batch/v1", self.jobs, namespace)

    async def _job_item(self, request: Request) -> JSONResponse:
        verb = "delete" if request.method == "DELETE" else "get"
        refused = self._refusal(request, verb, "jobs.batch")
        if refused is not None:
            return refused
        key = (request.path_params["namespace"], request.path_params["name"])
        job = self.jobs.get(key)
        if job is None:
            return status(404, "NotFound", f'jobs.batch "{key[1]}" not found', job_details(key[1]))
        if request.method == "GET":
            return JSONResponse(job)
        return self._delete_job(key, request.query_params.get("propagationPolicy"))

    async def _pod_list(self, request: Request) -> JSONResponse:
        refused = self._refusal(request, "list", "pods")
        if refused is not None:
            return refused
        return self._list(request, "PodList", "v1", self.pods, request.path_params["namespace"])

    async def _secret_create(self, request: Request) -> JSONResponse:
        refused = self._refusal(request, "create", "secrets")
        if refused is not None:
            return refused
        namespace = request.path_params["namespace"]
        body = await request.json()
        metadata = body.setdefault("metadata", {})
        if metadata.setdefault("namespace", namespace) != namespace:
            return status(400, "BadRequest", NAMESPACE_MISMATCH)
        invalid = invalid_secret(body)
        if invalid is not None:
            return invalid
        key = (namespace, metadata["name"])
        if key in self.secrets:
            message = f'secrets "{key[1]}" already exists'
            return status(409, "AlreadyExists", message, {"name": key[1], "kind": "secrets"})
        self.secrets[key] = stored_secret(body, str(next(self._versions)))
        return JSONResponse(self.secrets[key], status_code=201)

    async def _token_review(self, request: Request) -> JSONResponse:
        refused = self._refusal(request, "create", "tokenreviews.authentication.k8s.io")
        if refused is not None:
            return refused
        body = await request.json()
        spec = body.get("spec") or {}
        if body.get("kind") != "TokenReview" or not isinstance(spec.get("token"), str):
            return status(400, "BadRequest", "a TokenReview with spec.token is required")
        wanted = list(spec.get("audiences") or [API_AUDIENCE])
        answer = {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                  "metadata": {"creationTimestamp": None}, "spec": spec,
                  "status": self._review(spec["token"], wanted)}  # fmt: skip
        return JSONResponse(answer, status_code=201)

    def _review(self, token: str, wanted: list[str]) -> Obj:
        issued = self.pod_tokens.get(token)
        if issued is None:
            return {"authenticated": False, "user": {}, "error": "invalid bearer token"}
        namespace, pod_name, pod_uid, account, audiences = issued
        matched = [audience for audience in wanted if audience in audiences]
        if not matched:
            return {"authenticated": False, "user": {},
                    "error": "invalid bearer token, token audiences is invalid"}  # fmt: skip
        pod = self.pods.get((namespace, pod_name))
        if pod is None or pod["metadata"]["uid"] != pod_uid:
            error = f'pods "{pod_name}" not found' if pod is None else "pod uid mismatch"
            return {"authenticated": False, "user": {},
                    "error": f"invalid bearer token, {error}"}  # fmt: skip
        extra = {
            "authentication.kubernetes.io/credential-id": [f"JTI={token[:8]}"],
            "authentication.kubernetes.io/pod-name": [pod_name],
            "authentication.kubernetes.io/pod-uid": [pod_uid],
        }
        user = {
            "username": f"system:serviceaccount:{namespace}:{account}",
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{account}")),
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                       "system:authenticated"],
            "extra": extra,
        }  # fmt: skip
        return {"authenticated": True, "user": user, "audiences": matched}

    def _list(
        self,
        request: Request,
        kind: str,
        api_version: str,
        store: dict[tuple[str, str], Obj],
        namespace: str,
    ) -> JSONResponse:
        selector = request.query_params.get("labelSelector")
        try:
            found = [
                obj
                for (ns, _), obj in sorted(store.items())
                if ns == namespace and matches(selector, labels_of(obj))
            ]
        except SelectorError as exc:
            return status(400, "BadRequest", str(exc))
        start = int(request.query_params.get("continue") or 0)
        limit = int(request.query_params.get("limit") or 0) or len(found)
        page = found[start : start + limit]
        metadata: Obj = {"resourceVersion": str(next(self._versions))}
        if start + limit < len(found):
            metadata |= {
                "continue": str(start + limit),
                "remainingItemCount": len(found) - start - limit,
            }
        # the items of a list carry no kind or apiVersion, as in the real API
        items = [{k: v for k, v in obj.items() if k not in ("kind", "apiVersion")} for obj in page]
        return JSONResponse(
            {"kind": kind, "apiVersion": api_version, "metadata": metadata, "items": items}
        )

    def _create_job(self, namespace: str, body: Obj) -> JSONResponse:
        metadata = body.setdefault("metadata", {})
        if metadata.setdefault("namespace", namespace) != namespace:
            return status(400, "BadRequest", NAMESPACE_MISMATCH)
        if namespace not in self.namespaces:
            return status(
                404,
                "NotFound",
                f'namespaces "{namespace}" not found',
                {"name": namespace, "kind": "namespaces"},
            )
        invalid = invalid_job(body)
        if invalid is not None:
            return invalid
        key = (namespace, metadata["name"])
        if key in self.jobs:
            message = f'jobs.batch "{key[1]}" already exists'
            return status(409, "AlreadyExists", message, job_details(key[1]))
        self.jobs[key] = with_defaults(body, str(next(self._versions)))
        return JSONResponse(self.jobs[key], status_code=201)

    def _delete_job(self, key: tuple[str, str], policy: str | None) -> JSONResponse:
        job = self.jobs.pop(key)
        uid = job["metadata"]["uid"]
        for store in (self.pods, self.secrets):
            for dependent_key, dependent in list(store.items()):
                owners = dependent["metadata"].get("ownerReferences") or []
                if not any(owner["uid"] == uid for owner in owners):
                    continue
                if policy in ("Background", "Foreground"):
                    del store[dependent_key]
                else:
                    kept = [owner for owner in owners if owner["uid"] != uid]
                    dependent["metadata"]["ownerReferences"] = kept
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {**job_details(key[1]), "uid": uid},
        }
        return JSONResponse(body)

    # ---- the controllers, played by the test ---------------------------------------------------

    def job(self, name: str, namespace: str = "ci") -> Obj:
        """The stored Job ``name``."""
        return self.jobs[(namespace, name)]

    def job_names(self, namespace: str = "ci") -> list[str]:
        """The names of the Jobs in ``namespace``, sorted."""
        return sorted(name for ns, name in self.jobs if ns == namespace)

    def add_pod(
        self, name: str, service_account: str = "raibid-agent", namespace: str = "ci"
    ) -> Obj:
        """A running pod of no Job (one KEDA's Job controller made, say), with its account."""
        pod: Obj = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                         "creationTimestamp": NOW},
            "spec": {"serviceAccountName": service_account, "containers": []},
            "status": {"phase": "Running"},
        }  # fmt: skip
        self.pods[(namespace, name)] = pod
        return pod

    def issue_pod_token(self, pod: Obj, audience: str) -> str:
        """A projected ServiceAccount token of ``pod`` for ``audience``, as the kubelet mounts."""
        metadata = pod["metadata"]
        account = pod["spec"].get("serviceAccountName") or "default"
        # shaped like the real one, a JWT (header.payload.signature), but opaque here
        token = ".".join(("eyJhbGciOiJSUzI1NiJ9", secrets.token_urlsafe(48),
                          secrets.token_urlsafe(64)))  # fmt: skip
        self.pod_tokens[token] = (metadata["namespace"], metadata["name"], metadata["uid"],
                                  account, (audience,))  # fmt: skip
        return token

    def secret_value(self, name: str, key: str = "token", namespace: str = "ci") -> str:
        """The decoded value of ``key`` in Secret ``name`` (what a pod's volume shows)."""
        data = self.secrets[(namespace, name)]["data"]
        return base64.b64decode(data[key]).decode()

    def run_pod(
        self,
        job_name: str,
        container_state: Obj,
        *,
        phase: str = "Pending",
        pod_status: Obj | None = None,
        namespace: str = "ci",
    ) -> Obj:
        """Start a pod of Job ``job_name`` (the Job controller) in ``container_state`` (kubelet)."""
        job = self.job(job_name, namespace)
        pod = pod_of(job, container_state, phase, pod_status)
        name = pod["metadata"]["name"]
        self.pods[(namespace, name)] = pod
        job["status"] = {"active": 1, "ready": 0, "startTime": NOW, "uncountedTerminatedPods": {}}
        return pod

    def finish_job(
        self,
        job_name: str,
        *,
        succeeded: bool,
        at: str = NOW,
        reason: str | None = None,
        message: str | None = None,
        namespace: str = "ci",
    ) -> None:
        """End Job ``job_name`` as the Job controller does (the conditions of Kubernetes 1.31+)."""
        self.job(job_name, namespace)["status"] = finished_status(succeeded, at, reason, message)

    # ---- serving -------------------------------------------------------------------------------

    def kubeconfig(self, path: Path, *, token: str | None = None, port: int | None = None) -> Path:
        """Write a kubeconfig for this double (plain http, a bearer token) at ``path``."""
        return write_kubeconfig(path, port or self.port, token or self.token)

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[KubeDouble]:
        """Serve on a free loopback port until the block ends."""
        config = uvicorn.Config(
            self.app(),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            access_log=False,
            ws="none",
            http="h11",
        )
        server = _Server(config)
        task = asyncio.create_task(server.serve())
        await eventually(lambda: server.started, 5, "the Kubernetes API double to start")
        self.port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.should_exit = True
            await task


class _Server(uvicorn.Server):
    """uvicorn, leaving the test process's signal handlers alone."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
