"""Call the iris service through generated stubs: only grpcio and protobuf needed.

modelwire stubs build/iris -o build/iris-stubs
python examples/iris/client.py localhost:50051 build/iris-stubs
"""

from __future__ import annotations

import sys

import grpc

address, stubs_dir = sys.argv[1], sys.argv[2]
sys.path.insert(0, stubs_dir)
import model_pb2  # noqa: E402  -- generated into stubs_dir
import model_pb2_grpc  # noqa: E402

SPECIES = ["setosa", "versicolor", "virginica"]
rows = [  # sepal length, sepal width, petal length, petal width (cm)
    (5.1, 3.5, 1.4, 0.2),
    (6.2, 2.9, 4.3, 1.3),
    (7.7, 3.0, 6.1, 2.3),
]

with grpc.insecure_channel(address) as channel:
    stub = model_pb2_grpc.IrisServiceStub(channel)
    request = model_pb2.ClassifyRequest(
        sepal_length=[r[0] for r in rows],
        sepal_width=[r[1] for r in rows],
        petal_length=[r[2] for r in rows],
        petal_width=[r[3] for r in rows],
    )
    reply = stub.Classify(request, timeout=10)

for row, label in zip(rows, reply.iris_type, strict=False):
    print(f"{row} -> {label} ({SPECIES[label]})")
