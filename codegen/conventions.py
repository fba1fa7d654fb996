"""The names and numbers images, containers and deployment manifests agree on.

The ports a model (and a solution's broker) serves gRPC and HTTP on inside its
container, and
the keys of the labels modelwire puts on images, containers, networks and
Kubernetes objects, and reads back: `modelwire.codegen.dockerfile` writes the
image labels, `modelwire.containers.images` compares them to decide whether an
image can be reused, `modelwire.containers.runner` labels and finds what a
`run --docker` made, and `modelwire.codegen.deploy` labels and selects the
Kubernetes objects of an export. Constants only.
"""

from __future__ import annotations

from modelwire.config import DEFAULT_HTTP_PORT, DEFAULT_PORT

__all__ = [
    "K8S_MANAGED_BY",
    "K8S_NAME",
    "K8S_PART_OF",
    "LABEL_DIGEST",
    "LABEL_HOST",
    "LABEL_METHODS",
    "LABEL_MODEL",
    "LABEL_PID",
    "LABEL_PYTHON",
    "LABEL_RUN",
    "LABEL_RUNTIME",
    "LABEL_SERVICE",
    "LABEL_SOLUTION",
    "LABEL_VERSION",
    "MODEL_HTTP_PORT",
    "MODEL_PORT",
    "OCI_BASE_DIGEST",
    "OCI_BASE_NAME",
    "OCI_DESCRIPTION",
    "OCI_TITLE",
    "OCI_VERSION",
]

MODEL_PORT = DEFAULT_PORT  # what a model image serves on (EXPOSEd), and what exports connect to
MODEL_HTTP_PORT = DEFAULT_HTTP_PORT  # its HTTP face (EXPOSEd too; the exports' HTTP probes)

# the OCI annotations of every image modelwire builds
OCI_TITLE = "org.opencontainers.image.title"
OCI_VERSION = "org.opencontainers.image.version"
OCI_DESCRIPTION = "org.opencontainers.image.description"
OCI_BASE_NAME = "org.opencontainers.image.base.name"
OCI_BASE_DIGEST = "org.opencontainers.image.base.digest"

# modelwire's own labels: of a model's image ...
LABEL_MODEL = "io.modelwire.model"  # also on a run's container: the blueprint's model
LABEL_VERSION = "io.modelwire.version"
LABEL_METHODS = "io.modelwire.methods"
LABEL_SERVICE = "io.modelwire.service"
LABEL_PYTHON = "io.modelwire.python"
LABEL_DIGEST = "io.modelwire.digest"  # sha256 of the bundle's manifest
LABEL_RUNTIME = "io.modelwire.runtime"  # the modelwire version inside
# ... of a broker's image, and of the containers and network of a `run --docker`
LABEL_SOLUTION = "io.modelwire.solution"
LABEL_RUN = "io.modelwire.run"  # the run's id
LABEL_PID = "io.modelwire.pid"  # the process that made them
LABEL_HOST = "io.modelwire.host"  # the host it runs on

# Kubernetes' recommended labels, on every object of a `--k8s` export
K8S_NAME = "app.kubernetes.io/name"
K8S_PART_OF = "app.kubernetes.io/part-of"
K8S_MANAGED_BY = "app.kubernetes.io/managed-by"
