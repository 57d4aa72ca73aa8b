import pytest

from crs.config import ConfigError, CRSConfig, load_config


def test_defaults_come_from_the_dataclasses():
    config = load_config()
    assert isinstance(config, CRSConfig)
    assert config.data.valid_fraction == 0.1
    assert config.eval.ks == [1, 10, 50]


def test_command_line_beats_file_beats_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  valid_fraction: 0.2\n  split_seed: 5\n")
    config = load_config(path, ["data.split_seed=7"])
    assert config.data.valid_fraction == 0.2  # from the file
    assert config.data.split_seed == 7  # the command line wins
    assert config.data.use_approx is False  # default kept


@pytest.mark.parametrize(
    "override, match",
    [
        ("data.no_such_key=1", r"data\.no_such_key"),
        ("nokey=1", r"nokey"),
        ("data.valid_fraction=lots", r"data\.valid_fraction"),
        ("data.valid_fraction=1.5", r"data\.valid_fraction: must lie in \(0, 1\)"),
        ("eval.ks=[0,10]", r"eval\.ks"),
        ("linking.fuzzy_cutoff=101", r"linking\.fuzzy_cutoff"),
    ],
)
def test_bad_keys_and_values_name_the_key(override, match):
    with pytest.raises(ConfigError, match=match):
        load_config(overrides=[override])


def test_unknown_key_in_file_is_rejected(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("eval:\n  limitt: 3\n")
    with pytest.raises(ConfigError, match=r"eval\.limitt"):
        load_config(path)


def test_malformed_override_and_missing_file():
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(overrides=["data.use_approx"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("no/such/file.yaml")


def test_missing_data_dir_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("CRS_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="CRS_DATA_DIR"):
        load_config().data.resolve_data_dir()
    with pytest.raises(FileNotFoundError, match="no redial/"):
        load_config(overrides=[f"data.data_dir={tmp_path}"]).data.resolve_data_dir()
