"""examples/iris/batched.py: the iris example's batched variant has the unbatched bundle's
contract, answers every request as the unbatched one does, and batches when served."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_iris

import modelwire
from modelwire.bundle.batching import BatchedMethod, BatchPolicy
from modelwire.config import RuntimeConfig
from modelwire.hosting.metrics import Metrics
from modelwire.runtime.server import start
from modelwire.runtime.service import ModelService
from tests.bundle.procs import REPO, run_python


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("iris")
    out = {}
    for name, script in (("plain", "model.py"), ("batched", "batched.py")):
        out[name] = root / name
        run_python(REPO / "examples" / "iris" / script, out[name], cwd=root)
    return out


def _requests(cls: Any) -> list[Any]:
    rows = load_iris().data
    picks = [[0], [50, 100, 1], [], [149], [10, 60, 110, 20, 70]]
    return [cls(*(list(rows[p, i]) for i in range(4))) for p in picks]


def test_the_batched_bundle_has_the_unbatched_ones_proto(bundles):
    assert (bundles["batched"] / "model.proto").read_bytes() == (
        bundles["plain"] / "model.proto"
    ).read_bytes()


def test_every_request_is_answered_as_the_unbatched_model_answers_it(bundles):
    plain, batched = modelwire.load(bundles["plain"]), modelwire.load(bundles["batched"])
    method = batched.model.methods["classify"]
    assert isinstance(method, BatchedMethod)
    assert method.policy == BatchPolicy(max_batch_size=64)
    requests = _requests(batched.binding.messages["ClassifyRequest"])
    expected = [plain.classify(r).iris_type.tolist() if r.sepal_length else [] for r in requests]
    assert [list(map(int, t.iris_type)) for t in batched.classify.batch(requests)] == expected
    assert [list(map(int, batched.classify(r).iris_type)) for r in requests] == expected
    ragged = batched.binding.messages["ClassifyRequest"]([5.1], [3.5, 3.0], [1.4], [0.2])
    with pytest.raises(ValueError, match="dimensions except for the concatenation axis"):
        batched.classify(ragged)


def test_served_it_answers_concurrent_callers_in_batches(bundles):
    loaded = modelwire.load(bundles["batched"])
    with start(loaded, RuntimeConfig(port=0, metrics_port=0)) as server:
        metrics: Metrics = server.metrics
        service: ModelService = server.service
        requests = _requests(loaded.binding.messages["ClassifyRequest"]) * 20
        with modelwire.connect(server.address) as client, ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda r: list(client.classify(r).iris_type), requests))
        plain = modelwire.load(bundles["plain"])
        assert got == [
            plain.classify(r).iris_type.tolist() if r.sepal_length else [] for r in requests
        ]
        assert service.batching == {"classify": BatchPolicy(64)}
        text = metrics.exposition().decode()
        count = next(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith('modelwire_batch_size_count{method="classify"}')
        )
        assert 0 < count < len(requests), "8 callers at once share batches"
