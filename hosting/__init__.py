"""The service host: what every modelwire server shares, below the components that serve.

Binding a port with clear errors, health whose watches end on shutdown, reflection,
`ModelInfoService`, metrics, signals and draining; and the client side of the same
services (readiness, waiting for SERVING, health, reflection, model info; over HTTP,
`http_client`). The runtime, the broker's solution service and the catalog all serve
through one host (`modelwire.hosting.host`), whose listeners are faces: gRPC, and for
models and solutions the HTTP face (Connect, the Acumos contract, /docs).
"""

from __future__ import annotations

__all__: list[str] = []
