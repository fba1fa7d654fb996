"""The Docker side of `modelwire run --docker`: models as containers, and signal handling.

`DockerModels` has `LocalModels`' interface (`modelwire.broker.launch.Models`).
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

import contextlib
import logging
import os
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
from modelwire.hosting.process import uninterrupted
from modelwire.hosting.remote import wait_serving

__all__ = ["DockerModels"]

logger = logging.getLogger(__name__)


class DockerModels:
    """Bundle models as containers on a Docker network of their own (`run --docker`)."""

    def __init__(
        self,
        bundles: dict[str, Path],
        *,
        solution: str = "solution",
        base: str = DEFAULT_BASE,
        image_prefix: str = DEFAULT_PREFIX,
        max_message_mb: int = 256,
        progress: Callable[[str], None] | None = None,
        relay: Callable[[str, str], None] | None = None,
    ) -> None:
        """`progress` gets image build steps; `relay` gets (model, line) for each line
        the models log."""
        self.bundles = bundles
        self.solution = solution
        self.base = base
        self.image_prefix = image_prefix
        self.max_message_mb = max_message_mb
        self.progress = progress or (lambda line: logger.info("image build: %s", line))
        self.relay = relay or (lambda model, line: logger.info("%s: %s", model, line))
        self.run_id = uuid.uuid4().hex[:12]
        self.images: dict[str, str] = {}  # model -> image tag
        self.containers: dict[str, Any] = {}  # model -> docker Container
        self._client: Any = None
        self._relays: list[threading.Thread] = []

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
        for name, path in self.bundles.items():
            ref = ensure_image(
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
        network = f"modelwire-{dns_name(self.solution)}-{self.run_id}"
        with uninterrupted():
            client.networks.create(network, driver="bridge", labels=self.labels)
        for name in self.bundles:
            with uninterrupted():
                container = client.containers.run(
                    self.images[name],
                    ["--max-message-mb", str(self.max_message_mb)],
                    name=f"{network}-{dns_name(name)}",
                    detach=True,
                    # an init as PID 1: a SIGTERM that comes before the server installed
                    # its handler stops it at once (PID 1 ignores signals it has no
                    # handler for, so `stop` would wait for its SIGKILL)
                    init=True,
                    network=network,
                    ports={f"{MODEL_PORT}/tcp": ("127.0.0.1", None)},
                    labels={**self.labels, LABEL_MODEL: name},
                )
            self.containers[name] = container
            relay = threading.Thread(target=self._relay, args=(name, container), daemon=True)
            relay.start()
            self._relays.append(relay)
        deadline = time.monotonic() + timeout
        return {name: self._wait_serving(name, c, deadline) for name, c in self.containers.items()}

    def _wait_serving(self, name: str, container: Any, deadline: float) -> str:
        def gone() -> str | None:
            container.reload()
            if container.status not in ("exited", "dead"):
                return None
            code = container.attrs["State"]["ExitCode"]
            tail = container.logs(stdout=False, stderr=True, tail=10).decode(errors="replace")
            return (
                f"model {name!r} ({self.images[name]}) exited with status {code} before "
                f"serving:\n{tail.strip()}"
            )

        def published() -> str | None:  # known once the container runs (`gone` reloads it)
            bindings = container.ports.get(f"{MODEL_PORT}/tcp")
            return f"127.0.0.1:{bindings[0]['HostPort']}" if bindings else None

        address = wait_serving(
            published,
            max(0.0, deadline - time.monotonic()),
            alive=gone,
            what=f"model {name!r} ({self.images[name]})",
        )
        logger.info(
            "model %s serving at %s (container %s)",
            name,
            address,
            container.name,
            extra={"model": name, "address": address, "container": container.name},
        )
        return address

    def _relay(self, name: str, container: Any) -> None:
        """The container's log, line by line, into the broker's (until it stops)."""
        pending = b""
        try:
            for chunk in container.logs(stream=True, follow=True, stdout=False, stderr=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self.relay(name, line.decode(errors="replace"))
        except Exception:  # the container was removed under the stream
            logger.debug("log stream of model %s ended", name, exc_info=True)

    def stop(self, grace: float) -> None:
        """SIGTERM every container (SIGKILL after `grace` + 5 s), remove them and the network.

        They are found by this run's label, so one created just as a signal interrupted
        the call that made it is removed too.
        """
        import docker.errors

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
        for t in [*stoppers, *self._relays]:
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
