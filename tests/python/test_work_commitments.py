"""A server records every step it serves and commits them on chain after the epoch, across a crash.

One server (all 30 layers) on a real chain: it serves a generation, is killed with SIGKILL mid-epoch, restarts
from the same data directory, serves another; when the epoch's CommitWork window opens it commits a Merkle root
over every step of both runs.
"""

from __future__ import annotations

import time

from efedllm import merkle
from efedllm.chain.anvil import free_port, warp_to
from efedllm.chain.params import ProtocolParams
from efedllm.chain.protocol import Phase, Protocol
from efedllm.client import DistributedModel
from efedllm.localnet import ServerProcess
from efedllm.server.records import TaskStore

# the deployment's (tests/support/chain.py): one epoch outlasts a restart
PARAMS = ProtocolParams(epoch_length=600, unbonding_period=1200)


def test_a_server_restarted_mid_epoch_commits_every_task(w3, anvil, deployment, tmp_path):
    path = deployment.save(tmp_path / "deployments")
    data = tmp_path / "data"
    chain_args = ["--rpc-url", anvil.url, "--deployment", str(path), "--node-account", "1", "--data-dir", str(data)]
    server = ServerProcess("0:30", free_port(), args=chain_args, log_path=tmp_path / "server.log")
    protocol = Protocol(w3, deployment)
    epoch = protocol.current_epoch()
    warp_to(w3, protocol.window_start(epoch + 1, Phase.WORK))  # a fresh epoch with all its time ahead
    epoch += 1

    server.start().wait_ready()
    client = DistributedModel.from_pretrained(protocol=protocol)
    client.generate(prompt="Name a color.", max_new_tokens=5, eos_token_id=[])  # 5 steps
    server.kill()
    server.start().wait_ready()
    client.generate(prompt="Name a fruit.", max_new_tokens=3, eos_token_id=[])  # 3 more steps
    assert protocol.current_epoch() == epoch

    warp_to(w3, protocol.window_start(epoch, Phase.COMMIT_WORK))
    address = w3.eth.accounts[1]
    deadline = time.monotonic() + 30
    while (commitment := protocol.commitment_of(epoch, address)).work_units == 0:
        assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()[-2000:]
        time.sleep(0.5)
    server.stop()

    root = commitment.root
    assert (commitment.work_units, commitment.first_layer, commitment.num_layers) == (8, 0, 30)
    store = TaskStore(data / f"tasks-{address}.sqlite", server=address)
    records = store.records(epoch)
    assert [r.step for r in records] == [0, 1, 2, 3, 4, 0, 1, 2]
    assert root == merkle.root([r.leaf(address) for r in records])
    assert store.commitment(epoch)[1] == 8
