"""gcs.Config: construction, TOML loading, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

import gcs
from gcs.totem.config import MS, TotemConfig

LOCAL = {1: "127.0.0.1:5401", 2: "127.0.0.1:5402", 3: "127.0.0.1:5403"}


def make(**kwargs: object) -> gcs.Config:
    values: dict[str, object] = {"cluster_name": "c", "node_id": 1, "nodes": LOCAL}
    values.update(kwargs)
    return gcs.Config(**values)  # type: ignore[arg-type]


def error(**kwargs: object) -> gcs.ConfigError:
    with pytest.raises(gcs.ConfigError) as info:
        make(**kwargs)
    return info.value


def test_defaults_come_from_the_core() -> None:
    totem = make().totem()
    assert totem == TotemConfig(node_id=1, nodes=(1, 2, 3))
    assert make().bind_address == ("127.0.0.1", 5401)


def test_derived_timers_scale_with_the_token_timeout() -> None:
    totem = make(token_timeout_ms=300).totem()
    assert totem.token_timeout_ns == 300 * MS
    assert totem.token_retransmit_ns < totem.token_timeout_ns
    assert totem.consensus_timeout_ns == 360 * MS
    explicit = make(token_timeout_ms=300, hold_timeout_ms=20, consensus_timeout_ms=900).totem()
    assert (explicit.hold_timeout_ns, explicit.consensus_timeout_ns) == (20 * MS, 900 * MS)


def test_ipv6_addresses_need_brackets() -> None:
    cfg = make(nodes={1: "[::1]:5401", 2: "[::1]:5402"})
    assert cfg.bind_address == ("::1", 5401)
    assert str(cfg.addresses[1]) == "[::1]:5402"
    assert error(nodes={1: "::1:5401"}).field == "nodes[1]"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"nodes": {1: "127.0.0.1:5401", 2: "127.0.0.1:99999"}}, "nodes[2]"),
        ({"nodes": {1: "127.0.0.1:5401", 2: "127.0.0.1"}}, "nodes[2]"),
        ({"nodes": {1: "127.0.0.1:5401", 2: "127.0.0.1:5401"}}, "nodes[2]"),
        ({"node_id": 9}, "node_id"),
        ({"node_id": 0}, "node_id"),
        ({"cluster_name": ""}, "cluster_name"),
        ({"token_timeout_ms": "1000"}, "token_timeout_ms"),
        ({"window_size": 0}, "window_size"),
        ({"token_timeout_ms": 300, "token_retransmit_ms": 300}, "token_retransmit_ms"),
        ({"max_message_bytes": 3 * 1024 * 1024}, "max_message_bytes"),
        ({"multicast": "127.0.0.1:5000", "insecure": True}, "multicast"),
        ({"nodes": {1: "127.0.0.1:5401", 2: "[::1]:5402"}}, "nodes"),
        ({"insecure": "yes"}, "insecure"),
    ],
)
def test_errors_name_the_field(kwargs: dict[str, object], field: str) -> None:
    assert error(**kwargs).field == field


def test_unkeyed_nodes_must_stay_on_loopback(tmp_path: Path) -> None:
    nodes = {1: "127.0.0.1:5401", 2: "10.0.0.2:5402"}
    err = error(nodes=nodes)
    assert err.field == "key_file" and "nodes[2]" in str(err) and "insecure" in str(err)
    assert error(bind="0.0.0.0:5401").field == "key_file"
    make(nodes=nodes, insecure=True)
    make(nodes=nodes, key_file=tmp_path / "cluster.key")  # read at start, not here


def test_load_toml_with_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "cluster.toml").write_text(
        """
        cluster_name = "demo"
        node_id = 2
        key_file = "cluster.key"
        state_dir = "state"
        token_timeout_ms = 500

        [[nodes]]
        id = 1
        address = "10.0.0.1:5405"

        [[nodes]]
        id = 2
        address = "10.0.0.2:5405"
        """
    )
    cfg = gcs.Config.load(tmp_path / "cluster.toml")
    assert cfg.node_id == 2 and dict(cfg.nodes) == {1: "10.0.0.1:5405", 2: "10.0.0.2:5405"}
    assert Path(cfg.key_file or "") == tmp_path / "cluster.key"
    assert Path(cfg.state_dir or "") == tmp_path / "state"
    assert cfg.totem().token_timeout_ns == 500 * MS


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            '[[nodes]]\nid = 1\naddress = "127.0.0.1:1"\n[[nodes]]\nid = 2\naddress = "x:y"\n',
            "nodes[1].address",
        ),
        ('[[nodes]]\nid = 1\naddres = "127.0.0.1:1"\n', "nodes[0].addres"),
        ('[[nodes]]\naddress = "127.0.0.1:1"\n', "nodes[0].id"),
        (
            '[[nodes]]\nid = 1\naddress = "127.0.0.1:1"\n'
            '[[nodes]]\nid = 1\naddress = "127.0.0.1:2"\n',
            "nodes[1].id",
        ),
        ('token_timout_ms = 5\n[[nodes]]\nid = 1\naddress = "127.0.0.1:1"\n', "token_timout_ms"),
        ("this is = not toml [", "file"),
    ],
)
def test_toml_errors_name_the_entry(tmp_path: Path, body: str, field: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('cluster_name = "c"\nnode_id = 1\n' + body)
    with pytest.raises(gcs.ConfigError) as info:
        gcs.Config.load(path)
    assert info.value.field == field
    if field == "token_timout_ms":
        assert "token_timeout_ms" in str(info.value), "a close match is suggested"


def test_missing_file() -> None:
    with pytest.raises(gcs.ConfigError, match="cannot read"):
        gcs.Config.load("/nonexistent/cluster.toml")


def test_config_is_frozen_and_hashable() -> None:
    cfg = make()
    with pytest.raises(AttributeError):
        cfg.node_id = 2  # type: ignore[misc]
    assert hash(cfg) == hash(make()) and cfg == make()
