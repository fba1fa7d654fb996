#!/usr/bin/env bash
# The main job on the embedded default: dump the paper's iris model, serve it as a
# gRPC service on a local port, call it through generated stubs, print predictions.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== 1. dump the iris model (examples/iris/model.py) to build/iris"
python examples/iris/model.py build/iris
echo "== 2. generate Python stubs from the bundle's proto"
modelwire stubs build/iris -o build/iris-stubs
echo "== 3. serve it"
log=build/iris-serve.log
modelwire serve build/iris --port 0 --log-format console > build/iris-serve.out 2> "$log" &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do
  grep -q "listening on" build/iris-serve.out 2>/dev/null && break
  kill -0 $server 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
address=$(sed -n 's/^modelwire runtime listening on //p' build/iris-serve.out)
echo "   $(cat build/iris-serve.out)"
echo "== 4. call it through the generated stubs (examples/iris/client.py)"
python examples/iris/client.py "$address" build/iris-stubs
echo "== 5. stop the server (SIGTERM drains in-flight calls)"
kill -TERM $server
wait $server
trap - EXIT
echo "done"
