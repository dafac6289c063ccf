"""A GPU provider's account commands, the config file, and the error paths of the CLI, as a user runs them:
real ``efedllm`` processes against a real Anvil; every error is one line naming the contract's error and its meaning.

Servers are registered by calling the registry directly (no model is loaded) except where the test is about
``server run`` itself, whose checks must all happen before the model loads.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from test_cli import EFEDLLM, assert_one_line_error, run

from efedllm.chain.anvil import free_port, warp_to
from efedllm.chain.connection import Signer
from efedllm.chain.explain import epochs, utc
from efedllm.chain.params import ETHER
from efedllm.chain.protocol import Protocol, Status
from efedllm.cli.common import setup_logging
from efedllm.cli.config import _walk
from efedllm.cli.config import apply as apply_config
from efedllm.cli.main import build_parser
from efedllm.localnet import ServerProcess
from tests.support.processes import watched

ENDPOINT = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def env(deployment, tmp_path_factory):
    """What a user's shell holds: where the deployment file is. No key: signers are chosen per command."""
    directory = tmp_path_factory.mktemp("deployments")
    deployment.save(directory)
    return {"EFEDLLM_DEPLOYMENTS": str(directory)}


def registered(w3, deployment, account: int) -> Protocol:
    """Node account ``account``, registered for layers 0:10 with 2 ETH, straight through the registry."""
    protocol = Protocol(w3, deployment, Signer(w3.eth.accounts[account]))
    protocol.tx.send(protocol.registry.functions.register(ENDPOINT, 0, 10), value=2 * ETHER, label="register")
    return protocol


@pytest.fixture(scope="module")
def server(w3, deployment, env):
    """Node account 3 as registered (2 ETH for 0:10): the tests that read it share it, in any order."""
    return registered(w3, deployment, 3)


@pytest.fixture(scope="module")
def staker(w3, deployment, env):
    """Node account 6 as registered, for the test that changes its stake (so ``server`` stays as registered)."""
    return registered(w3, deployment, 6)


def record(protocol, address=None):
    address = address or protocol.signer.address
    return protocol.server(address)


def cli(anvil, env, *args, account=3, extra_env=None):
    return run(*args, "--rpc-url", anvil.url, "--node-account", str(account), env={**env, **(extra_env or {})})


def test_status_shows_the_record_from_the_chain(anvil, env, server):
    me = server.signer.address
    result = cli(anvil, env, "server", "status")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert me in out and ENDPOINT in out and "0:10 (10 of 30)" in out
    assert "active since epoch" in out and "2.000000 ETH bonded (minStake 1.000000 ETH)" in out
    assert "not scored yet" in out and "nothing to claim" in out
    # --address reads anyone's record and needs no key: a broken key in the environment does not matter
    other = run(
        "server",
        "status",
        "--rpc-url",
        anvil.url,
        "--address",
        me.lower(),
        env={**env, "EFEDLLM_PRIVATE_KEY": "0x1234"},
    )
    assert other.returncode == 0, other.stderr
    assert me in other.stdout


def test_stake_unstake_and_withdraw(anvil, w3, env, staker):
    me = staker.signer.address
    staked = cli(anvil, env, "server", "stake", "--amount", "0.5", account=6)
    assert staked.returncode == 0, staked.stderr
    assert record(staker).stake == 2 * ETHER + ETHER // 2
    assert "now has 2.500000 ETH bonded" in staked.stdout

    too_much = cli(anvil, env, "server", "unstake", "--amount", "3", account=6)
    assert_one_line_error(too_much, "requestUnstake reverted: AmountExceedsStake(")
    assert "asked for 3.000000 ETH but only 2.500000 ETH is bonded" in too_much.stderr

    unstaked = cli(anvil, env, "server", "unstake", "--amount", "2", account=6)
    assert unstaked.returncode == 0, unstaked.stderr
    after = record(staker)
    assert (after.stake, after.unbonding, after.status) == (ETHER // 2, 2 * ETHER, Status.INACTIVE)
    assert f"unlocks at {utc(after.unlock_time)}" in unstaked.stdout

    status = cli(anvil, env, "server", "status", account=6).stdout
    assert "inactive: bonded stake below minStake" in status and "2.000000 ETH, unlocks at" in status

    early = cli(anvil, env, "server", "withdraw", account=6)
    assert_one_line_error(early, f"withdraw reverted: StillUnbonding(unlockTime={after.unlock_time})")
    assert f"still unbonding until {utc(after.unlock_time)}" in early.stderr

    warp_to(w3, after.unlock_time)
    before = w3.eth.get_balance(me)
    withdrawn = cli(anvil, env, "server", "withdraw", account=6)
    assert withdrawn.returncode == 0, withdrawn.stderr
    assert "withdrew 2.000000 ETH" in withdrawn.stdout
    assert record(staker).unbonding == 0
    assert 2 * ETHER - 10**16 < w3.eth.get_balance(me) - before <= 2 * ETHER  # less the gas

    again = cli(anvil, env, "server", "withdraw", account=6)
    assert_one_line_error(again, "withdraw reverted: NothingToWithdraw(): nothing is unbonding")


def test_claim_with_nothing_to_claim(anvil, env, server):
    result = cli(anvil, env, "server", "claim")
    assert result.returncode == 0, result.stderr
    assert f"nothing to claim for {server.signer.address}" in result.stdout


def test_epoch_lists_read_as_english():
    """Claims and pending rewards say "epoch 3" for one epoch (not "epochs 3")."""
    assert (epochs([3]), epochs([3, 4])) == ("epoch 3", "epochs 3, 4")


def test_unregistered_account(anvil, w3, env, deployment):
    stranger = w3.eth.accounts[4]
    assert_one_line_error(cli(anvil, env, "server", "status", account=4), f"{stranger} is not registered as a server")
    staked = cli(anvil, env, "server", "stake", "--amount", "1", account=4)
    assert_one_line_error(staked, f"addStake reverted: NotRegistered(server={stranger}): {stranger} is not registered")
    assert_one_line_error(
        cli(anvil, env, "server", "stake", "--amount", "-1", account=4), "--amount must be a positive"
    )


def test_server_run_refuses_before_loading_the_model(anvil, env):
    """Layers out of range and a stake below minStake end `server run` in seconds, before torch loads a model."""
    started = time.monotonic()
    out_of_range = cli(anvil, env, "server", "run", "--layers", "25:35", account=5)
    assert_one_line_error(out_of_range, "layers 25:35 are out of range of a 30-layer model")
    too_little = cli(anvil, env, "server", "run", "--layers", "0:10", "--stake", "0.5", account=5)
    assert_one_line_error(
        too_little,
        "register reverted: InsufficientStake(stake=500000000000000000, "
        "minStake=1000000000000000000): stake 0.500000 ETH is below the minimum",
    )
    assert "loaded layers" not in out_of_range.stdout + too_little.stdout
    assert time.monotonic() - started < 60


def test_no_chain_no_deployment_and_bad_key(anvil, env, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    assert_one_line_error(run("server", "status", "--rpc-url", url, env=env), f"no chain reachable at {url}")
    empty = {"EFEDLLM_DEPLOYMENTS": str(tmp_path / "none")}
    assert_one_line_error(
        run("server", "stake", "--amount", "1", "--rpc-url", anvil.url, env=empty), "no deployment file"
    )
    bad_key = run("server", "withdraw", "--rpc-url", anvil.url, env={**env, "EFEDLLM_PRIVATE_KEY": "0xnothex"})
    assert_one_line_error(bad_key, "EFEDLLM_PRIVATE_KEY is not a valid private key")


def test_config_file_gives_defaults_and_flags_win(anvil, env, server, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    config = tmp_path / "efedllm.toml"
    config.write_text(f'rpc-url = "{dead}"\n\n[server.status]\nnode-account = 3\n')
    from_file = run("server", "status", "--config", str(config), env=env)
    assert_one_line_error(from_file, f"no chain reachable at {dead}")  # the file's rpc-url was used
    flag_wins = run("server", "status", "--config", str(config), "--rpc-url", anvil.url, env=env)
    assert flag_wins.returncode == 0, flag_wins.stderr
    assert server.signer.address in flag_wins.stdout  # node-account 3 came from [server.status]
    via_env = run("server", "status", "--rpc-url", anvil.url, env={**env, "EFEDLLM_CONFIG": str(config)})
    assert via_env.returncode == 0 and server.signer.address in via_env.stdout


@pytest.mark.parametrize(
    "text, message",
    [
        (
            'private-key = "0x{}"\n'.format("ab" * 32),
            "refusing 'private-key': a private key never goes in a config file",
        ),
        ('[server.run]\nkey = "whatever"\n', "refusing 'server.run.key'"),
        ('[deploy]\nverifier = ["0x{}"]\nnote = "0x{}"\n'.format("11" * 20, "cd" * 32), "refusing 'deploy.note'"),
        ('rpc-ulr = "http://x"\n', "unknown key 'rpc-ulr'"),
        ('[server.run]\nport = "eighty"\n', "server.run.port: invalid value 'eighty'"),
        ('[server.run]\nrebalance = "yes"\n', "server.run.rebalance must be true or false"),
        ("[sever]\nport = 1\n", "[sever] names no subcommand"),
    ],
)
def test_config_file_refuses_keys_and_mistakes(env, tmp_path, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert_one_line_error(run("status", "--config", str(config), env=env), message)


def test_every_flag_says_what_it_does_and_its_default():
    missing = []
    for parser in list(_walk(build_parser()))[1:]:  # the root parser adds "(default: ...)" by its formatter
        for action in parser._actions:
            if action.option_strings and not isinstance(action, argparse._HelpAction):
                text = action.help or ""
                if "default" not in text or not text.split("(default")[0].strip():
                    missing.append(f"{parser.prog} {action.option_strings[0]}: {text!r}")
    assert not missing, missing


def test_log_json_writes_one_object_per_line(capsys):
    progress = setup_logging(argparse.Namespace(log_level="info", log_json=True), name="efedllm.server")
    try:
        progress("serving on http://127.0.0.1:8000")
        logging.getLogger("efedllm.server.work").debug("hidden at info")
        logging.getLogger("urllib3").info("hidden: other libraries log warnings only")
        logging.getLogger("efedllm.server.work").warning("epoch %d: late", 3)
    finally:
        logging.basicConfig(force=True)
        logging.getLogger("efedllm").setLevel(logging.NOTSET)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(e["level"], e["logger"], e["message"]) for e in lines] == [
        ("info", "efedllm.server", "serving on http://127.0.0.1:8000"),
        ("warning", "efedllm.server.work", "epoch 3: late"),
    ]
    assert lines[0]["time"].endswith("+00:00")


@pytest.fixture(scope="module")
def whole_model_server(tmp_path_factory):
    port = free_port()
    server = ServerProcess(
        "0:30",
        port,
        ["--no-chain", "--data-dir", str(tmp_path_factory.mktemp("data"))],
        log_path=tmp_path_factory.mktemp("logs") / "server.log",
    )
    server.start().wait_ready()
    yield server
    server.stop()


def test_chat_keeps_the_conversation_and_ends_on_ctrl_c(whole_model_server):
    """Two turns through a server, the second answered with the first in context (checked against the full model
    run locally on the same messages), then Ctrl-C: exit code 0, no traceback."""
    questions = ["Name a colour.", "And another one?"]
    args = [EFEDLLM, "generate", "--chat", "--servers", whole_model_server.url, "--max-new-tokens", "8"]
    with watched(args, timeout=300, stdin=True) as proc:
        proc.stdin.write("".join(q + "\n" for q in questions))
        proc.stdin.flush()
        shown = ""
        while shown.count("\n> ") < len(questions):  # the prompt "> " comes back after each answer
            char = proc.stdout.read(1)
            assert char, f"chat ended early: {shown!r} {proc.stderr.read()}"
            shown += char
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    answers = [a.strip() for a in shown.removeprefix("> ").split("\n> ")[:2]]
    assert all(answers), answers
    messages = [
        {"role": "user", "content": questions[0]},
        {"role": "assistant", "content": answers[0]},
        {"role": "user", "content": questions[1]},
    ]
    assert [answers[0], answers[1]] == local_greedy([messages[:1], messages], steps=8)


def test_an_answer_cut_at_the_token_limit_says_so(whole_model_server):
    """Issue 17: an answer stopped by --max-new-tokens (not by the model) ended with no notice."""
    cmd = [EFEDLLM, "generate", "--servers", whole_model_server.url, "--max-new-tokens", "3"]
    result = subprocess.run([*cmd, "Count from one to twenty."], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "(stopped at the 3-token limit; --max-new-tokens raises it)" in result.stderr


def local_greedy(conversations: list[list[dict]], *, steps: int) -> list[str]:
    """The model's greedy answer to each conversation, computed in this process with transformers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from efedllm.model.source import DEFAULT_MODEL, resolve

    folder = resolve(DEFAULT_MODEL).folder
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
    answers = []
    for messages in conversations:
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
        ids = ids if torch.is_tensor(ids) else ids["input_ids"]
        new: list[int] = []
        with torch.inference_mode():
            for _ in range(steps):
                context = torch.cat([ids, torch.tensor([new], dtype=torch.long)], dim=1)
                new.append(int(model(context).logits[0, -1].argmax()))
                if new[-1] == tokenizer.eos_token_id:
                    break
        answers.append(tokenizer.decode(new, skip_special_tokens=True).strip())
    return answers


def test_the_guides_config_example_is_accepted(tmp_path, monkeypatch):
    """docs/GPU_PROVIDERS.md's config file, applied to `server run` as the systemd unit runs it."""
    guide = (Path(__file__).parents[2] / "docs" / "GPU_PROVIDERS.md").read_text()
    example = guide.split("```toml\n", 1)[1].split("```", 1)[0]
    config = tmp_path / "efedllm.toml"
    config.write_text(example)
    monkeypatch.setenv("EFEDLLM_CONFIG", str(config))
    parser = build_parser()
    argv = ["server", "run", "--port", "8001"]
    assert apply_config(parser, argv) == config
    args = parser.parse_args(argv)
    assert (args.layers, args.host, args.port, args.data_dir, args.auto_claim, args.log_json) == (
        "10:20",
        "0.0.0.0",
        8001,
        "/var/lib/efedllm",
        True,
        True,
    )
    assert (args.rpc_url, args.keystore) == ("https://rpc.example.org", Path("/etc/efedllm/keystore.json"))
