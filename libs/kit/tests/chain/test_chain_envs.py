"""What `make up` gives each chain-using process: a development node's URL and key, or its own
key for a real node (never one key in two processes)."""

from __future__ import annotations

import logging

import pytest
from audifi_kit.chain.devnode import dev_private_key
from audifi_kit.launch import chain_envs
from audifi_kit.settings import Settings
from eth_account import Account

USERS = ("nft", "coin", "payment")


def test_without_a_node_each_gets_the_dev_node_and_its_own_dev_key() -> None:
    envs = chain_envs(USERS, Settings(chain_node_port=18545), {})

    assert set(envs) == set(USERS)
    for name, env in envs.items():
        assert env["CHAIN_RPC_URL"] == "http://127.0.0.1:18545"
        assert env["CHAIN_DEPLOYMENT"] == "http://127.0.0.1:18545/deployment"
        assert env["CHAIN_PRIVATE_KEY"] == dev_private_key(name)
    addresses = {Account.from_key(e["CHAIN_PRIVATE_KEY"]).address for e in envs.values()}
    assert len(addresses) == 3


def test_with_a_node_each_gets_its_own_key_from_NAME_CHAIN_PRIVATE_KEY(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keys = {name: "0x" + f"{i + 11:064x}" for i, name in enumerate(USERS)}
    environ = {f"{n.upper()}_CHAIN_PRIVATE_KEY": k for n, k in keys.items()}

    with caplog.at_level(logging.WARNING):
        envs = chain_envs(USERS, Settings(chain_rpc_url="http://node:8545"), environ)

    assert envs == {n: {"CHAIN_PRIVATE_KEY": k} for n, k in keys.items()}
    assert "would all sign" not in caplog.text


def test_with_a_node_and_one_shared_key_the_supervisor_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        envs = chain_envs(USERS, Settings(chain_rpc_url="http://node:8545"), {})

    assert envs == {}  # they inherit CHAIN_PRIVATE_KEY
    assert "nft, coin, payment would all sign with CHAIN_PRIVATE_KEY" in caplog.text
