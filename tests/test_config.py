import pytest

from core.config import ConfigError, config_hash, merge


def test_merge_overrides_nested_and_rejects_unknown_keys():
    d = {"a": 1, "b": {"c": 2, "d": 3}}
    m = merge(d, {"b": {"c": 5}})
    assert m == {"a": 1, "b": {"c": 5, "d": 3}} and d["b"]["c"] == 2
    with pytest.raises(ConfigError, match="b.x"):
        merge(d, {"b": {"x": 1}})


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
