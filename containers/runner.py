"""The Docker side of `modelwire run --docker`: models as containers, and signal handling.

`DockerModels` has `LocalModels`' interface (`modelwire.broker.launch.Models`): it
starts every model's container and waits for SERVING, and `spawn(name)` starts a new
container of a model when its supervisor replaces one that ended or was killed
(`docker kill`, when it stopped answering its health checks). A container's end is seen
at once (`docker wait`, not a poll); the container that ended is removed when its
successor is started under the same name, which publishes a new loopback port.
Images come from `modelwire.containers.images.ensure_image`: one per exact bundle, built
once and reused while the bundle is unchanged. Every run makes a network of its
own; each container joins it and publishes its port 50051 on a free loopback
port, which is the address the broker (on this host) uses. That works the same
with every engine (Docker Desktop and rootless engines cannot route to container
addresses) and leaves nothing reachable from outside the machine.

Containers and networks carry `io.modelwire.*` labels naming the run, the
process and the host: a run removes what carries its label when it stops, and
what runs on this host that died without stopping (SIGKILL) left behind when it
starts. Signals interrupt a start only between engine calls (`uninterrupted`),
so nothing is created that the cleanup cannot see.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelwire.codegen.conventions import (
    LABEL_HOST,
    LABEL_MODEL,
    LABEL_PID,
    LABEL_RUN,
    LABEL_SOLUTION,
    MODEL_PORT,
)
from modelwire.codegen.deploy import dns_name
from modelwire.containers.images import DEFAULT_BASE, DEFAULT_PREFIX
from modelwire.errors import ServiceError
from modelwire.hosting.process import uninterrupted
from modelwire.hosting.remote import wait_serving
from modelwire.hosting.supervisor import StartFailed

__all__ = ["DockerModels", "ModelContainer"]

logger = logging.getLogger(__name__)

_TAIL = 10


class ModelContainer:
    """One container of a bundle model (an `Instance` of `modelwire.hosting.supervisor`)."""

    def __init__(
        self, name: str, image: str, container: Any, relay: Callable[[str, str], str | None]
    ) -> None:
        self.name = name
        self.image = image
        self.container = container
        self.relay = relay
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL)
        self.relaying = threading.Thread(target=self._relay, daemon=True)
        self.relaying.start()

    @property
    def what(self) -> str:
        return f"container {self.container.name}"

    def _relay(self) -> None:
        """The container's log, line by line, into the broker's (until it stops)."""
        pending = b""
        try:
            for chunk in self.container.logs(stream=True, follow=True, stdout=False, stderr=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    shown = self.relay(self.name, line.decode(errors="replace"))
                    if shown is not None:
                        self.tail.append(shown)
        except Exception:  # the container was removed under the stream
            logger.debug("log stream of model %s ended", self.name, exc_info=True)

    def gone(self) -> str | None:
        """Why it ended before serving (its status and last words), or None while it runs."""
        self.container.reload()
        if self.container.status not in ("exited", "dead"):
            return None
        lines = "\n".join(self.last_lines())
        return f"model {self.name!r} ({self.image}) {self.ended()} before serving:\n{lines}".strip()

    def published(self) -> str | None:
        """Its loopback address, known once it runs (`gone` reloads it)."""
        bindings = self.container.ports.get(f"{MODEL_PORT}/tcp")
        return f"127.0.0.1:{bindings[0]['HostPort']}" if bindings else None

    def wait_serving(
        self,
        timeout: float,
        cancelled: threading.Event | None = None,
        *,
        deadline: float | None = None,
    ) -> str:
        """Wait until it reports SERVING on its published port; that address.

        Raises:
            StartFailed: it ended, did not serve within `timeout`, or `cancelled` was set.
        """
        if deadline is None:
            deadline = time.monotonic() + timeout

        def alive() -> str | None:
            if cancelled is not None and cancelled.is_set():
                return f"model {self.name!r}: the start was cancelled"
            return self.gone()

        try:
            address = wait_serving(
                self.published,
                max(0.0, deadline - time.monotonic()),
                alive=alive,
                what=f"model {self.name!r} ({self.image})",
            )
        except ServiceError as exc:
            raise StartFailed(str(exc)) from None
        logger.info(
            "model %s serving at %s (container %s)",
            self.name,
            address,
            self.container.name,
            extra={"model": self.name, "address": address, "container": self.container.name},
        )
        return address

    def wait(self) -> None:
        """Block until the container has stopped (or is gone)."""
        import docker.errors

        while True:
            try:
                self.container.wait()
                return
            except docker.errors.NotFound:
                return
            except Exception:  # the engine's connection dropped: ask again
                logger.debug("waiting for container %s", self.container.name, exc_info=True)
                time.sleep(0.5)

    def ended(self) -> str:
        """How the container ended: its exit status (and signal, or the OOM killer)."""
        import docker.errors

        try:
            self.container.reload()
        except docker.errors.NotFound:
            return "was removed"
        state = self.container.attrs["State"]
        code = int(state.get("ExitCode", 0))
        text = f"exited with status {code}"
        if code > 128:
            with contextlib.suppress(ValueError):
                text += f" ({signal.Signals(code - 128).name})"
        if state.get("OOMKilled"):
            text += ", killed by the kernel's OOM killer"
        return text

    def last_lines(self) -> list[str]:
        self.relaying.join(5)  # the stream ends with the container: its last words
        return list(self.tail)

    def kill(self) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.APIError):
            self.container.kill()


class DockerModels:
    """Bundle models as containers on a Docker network of their own (`run --docker`).

    `bundles` names what to run: each name is one container (the runner names the
    replicas of a model `model#1`, `model#2`, ...; those of one bundle share its image).
    """

    def __init__(
        self,
        bundles: dict[str, Path],
        *,
        solution: str = "solution",
        base: str = DEFAULT_BASE,
        image_prefix: str = DEFAULT_PREFIX,
        max_message_mb: int = 256,
        progress: Callable[[str], None] | None = None,
        relay: Callable[[str, str], str | None] | None = None,
    ) -> None:
        """`progress` gets image build steps; `relay` gets (model, line) for each line
        the models log, and returns it as text to quote when a model ends."""
        self.bundles = bundles
        self.solution = solution
        self.base = base
        self.image_prefix = image_prefix
        self.max_message_mb = max_message_mb
        self.progress = progress or (lambda line: logger.info("image build: %s", line))
        self.relay = relay or _log_line
        self.run_id = uuid.uuid4().hex[:12]
        self.network = ""
        self.images: dict[str, str] = {}  # model -> image tag
        self.containers: dict[str, ModelContainer] = {}  # model -> its first container
        self._client: Any = None
        self._all: list[ModelContainer] = []  # every container started
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def labels(self) -> dict[str, str]:
        return {
            LABEL_RUN: self.run_id,
            LABEL_SOLUTION: self.solution,
            LABEL_PID: str(os.getpid()),
            LABEL_HOST: socket.gethostname(),
        }

    def start(self, timeout: float) -> dict[str, str]:
        """Build or reuse the images, start the containers, wait until each reports SERVING."""
        from modelwire.containers.images import docker_client, ensure_image

        self._client = client = docker_client()
        _remove_orphans(client)
        made: dict[Path, Any] = {}  # the replicas of a model share its image
        for name, path in self.bundles.items():
            if path in made:
                self.images[name] = made[path].tag
                continue
            ref = made[path] = ensure_image(
                path,
                base=self.base,
                prefix=self.image_prefix,
                progress=self.progress,
                client=client,
            )
            self.images[name] = ref.tag
            logger.info(
                "model %s: image %s (%s)",
                name,
                ref.tag,
                "built" if ref.built else "reused",
                extra={"model": name, "image": ref.tag},
            )
        self.network = f"modelwire-{dns_name(self.solution)}-{self.run_id}"
        with uninterrupted():
            client.networks.create(self.network, driver="bridge", labels=self.labels)
        for name in self.bundles:
            self.containers[name] = self.spawn(name)
        deadline = time.monotonic() + timeout
        addresses = {}
        for name, c in self.containers.items():
            try:
                addresses[name] = c.wait_serving(timeout, deadline=deadline)
            except StartFailed as exc:
                raise ServiceError(str(exc)) from None
        return addresses

    @property
    def instances(self) -> dict[str, ModelContainer]:
        return dict(self.containers)

    def spawn(self, name: str) -> ModelContainer:
        """Start a container of model `name` on the run's network (not waited for); one
        of it that ended before is removed first (its name is taken again).

        Raises:
            RuntimeError: the run is stopping.
        """
        import docker.errors

        client = self._client
        container_name = f"{self.network}-{dns_name(name)}"
        with self._lock:
            if self._stopped or client is None:
                raise RuntimeError("the models are stopping")
            with contextlib.suppress(docker.errors.NotFound):
                client.containers.get(container_name).remove(force=True)
            with uninterrupted():
                container = client.containers.run(
                    self.images[name],
                    ["--max-message-mb", str(self.max_message_mb)],
                    name=container_name,
                    detach=True,
                    # an init as PID 1: a SIGTERM that comes before the server installed
                    # its handler stops it at once (PID 1 ignores signals it has no
                    # handler for, so `stop` would wait for its SIGKILL)
                    init=True,
                    network=self.network,
                    ports={f"{MODEL_PORT}/tcp": ("127.0.0.1", None)},
                    labels={**self.labels, LABEL_MODEL: name},
                )
            started = ModelContainer(name, self.images[name], container, self.relay)
            self._all.append(started)
        return started

    def stop(self, grace: float) -> None:
        """SIGTERM every container (SIGKILL after `grace` + 5 s), remove them and the network.

        They are found by this run's label, so one created just as a signal interrupted
        the call that made it is removed too.
        """
        import docker.errors

        with self._lock:
            self._stopped = True
        if self._client is None:
            return
        client = self._client

        def stop_one(container: Any) -> None:
            with contextlib.suppress(docker.errors.APIError):
                container.stop(timeout=int(grace) + 5)
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                logger.warning("could not remove container %s: %s", container.name, exc)

        mine = {"label": f"{LABEL_RUN}={self.run_id}"}
        containers = client.containers.list(all=True, filters=mine, ignore_removed=True)
        stoppers = [threading.Thread(target=stop_one, args=(c,)) for c in containers]
        for t in stoppers:
            t.start()
        for t in [*stoppers, *(c.relaying for c in self._all)]:
            t.join(grace + 30)
        networks = client.networks.list(filters=mine)
        for network in networks:
            try:
                network.remove()
            except docker.errors.APIError as exc:
                logger.warning("could not remove network %s: %s", network.name, exc)
        if containers or networks:
            logger.info(
                "removed %d containers and %d network of run %s",
                len(containers),
                len(networks),
                self.run_id,
            )
        client.close()
        self._client = None


def _log_line(model: str, line: str) -> str:
    logger.info("%s: %s", model, line)
    return line


def _remove_orphans(client: Any) -> None:
    """Remove the containers and networks of `run --docker` processes on this host that
    died without removing them (SIGKILL)."""
    import docker.errors

    host = socket.gethostname()
    filters = {"label": [LABEL_RUN, f"{LABEL_HOST}={host}"]}
    stale = []
    # another run may be removing the same orphans: a container gone meanwhile is fine
    for c in client.containers.list(all=True, filters=filters, ignore_removed=True):
        if not _alive(c.labels.get(LABEL_PID, "")):
            stale.append(c)
    for c in stale:
        logger.info("removing container %s of a run that ended without it", c.name)
        with contextlib.suppress(docker.errors.NotFound):
            c.remove(force=True)
    for n in client.networks.list(filters=filters):
        if not _alive(n.attrs.get("Labels", {}).get(LABEL_PID, "")):
            logger.info("removing network %s of a run that ended without it", n.name)
            n.remove()


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        pass
    return True
