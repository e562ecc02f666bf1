"""The config schema: the three profiles validate, defaults are filled, bad values are refused."""

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError

from klvae.config import validate_config
from klvae.registry import config_schema

REPO = Path(__file__).resolve().parents[1]
#: The workflow's schema: the base schema plus each registered experiment's settings (klvae.registry).
SCHEMA = config_schema()


def load(profile):
    return yaml.safe_load((REPO / "config" / f"{profile}.yaml").read_text())


@pytest.mark.parametrize("profile", ["quick", "default", "paper"])
def test_profiles_validate_and_get_defaults(profile):
    cfg = load(profile)
    validate_config(cfg, SCHEMA)
    assert cfg["report"]["renderer"] == "auto"
    assert cfg["data"]["mnist"]["source"] == "pypi"
    assert cfg["e1"]["manifold_n"] == 30


def test_paper_profile_is_the_seeds_settings():
    cfg = load("paper")
    validate_config(cfg, SCHEMA)
    assert cfg["e1"]["epochs"] == 40 and cfg["e1"]["batch_size"] == 128
    assert cfg["e1"]["coefficients"] == [0, 0.02, 0.1, 0.5, 1, 2, 10, 20]
    assert cfg["e1"]["n_train"] is None and cfg["e1"]["n_test"] is None


BAD = [
    (("e1", "epochs"), -3, "epochs"),
    (("e1", "epochs"), 0, "epochs"),
    (("e1", "coefficients"), [], "coefficients"),
    (("e1", "coefficients"), [1, -0.5], "coefficients"),
    (("data", "mnist", "source"), "torrent", "source"),
    (("e1", "batch_size"), "big", "batch_size"),
    (("seed",), -1, "seed"),
    (("e1", "n_train"), 70000, "n_train"),
    (("e1", "n_train"), 0, "n_train"),
    (("e1", "coefficients"), [0.5, 5000], "coefficients"),
    (("e2", "strategies"), ["end_layer", "gradient_tape", "lambda_layer"], "strategies"),
    (("e2", "strategies"), ["end_layer"], "strategies"),  # gradient_tape is the reference
    (("e2", "fact"), 2.5, "fact"),
    (("e2", "fact"), 0, "fact"),
    (("e2", "z_dims"), [], "z_dims"),
    (("e3", "fact"), -1e-3, "fact"),
    (("e3", "batch_size"), 0, "batch_size"),
    (("e3", "epochs"), 1.5, "epochs"),
    (("data", "celeba", "split"), "random", "split"),
    (("data", "celeba", "verify_md5"), "yes", "verify_md5"),
    (("profile",), "fast", "profile"),
]


@pytest.mark.parametrize("path,value,key", BAD, ids=[f"{'.'.join(p)}={v!r}" for p, v, _ in BAD])
def test_schema_refuses_bad_values(path, value, key):
    cfg = copy.deepcopy(load("quick"))
    node = cfg
    for p in path[:-1]:
        node = node.setdefault(p, {})
    node[path[-1]] = value
    with pytest.raises(WorkflowError) as err:
        validate_config(cfg, SCHEMA)
    assert key in str(err.value)


def test_schema_refuses_unknown_keys():
    cfg = load("quick")
    cfg["e1"]["epoch"] = 3  # typo of "epochs"
    with pytest.raises(WorkflowError, match="epoch"):
        validate_config(cfg, SCHEMA)


def test_config_reference_page_is_current_and_lists_every_key(tmp_path, monkeypatch):
    """config/README.md is written from the schema (klvae.config_docs); a stale page is caught."""
    from klvae import config_docs

    assert config_docs.main(["--check"]) == 0
    schema = config_docs.schema()
    page = config_docs.PAGE.read_text()
    keys = [".".join(path) for path, _ in config_docs.leaves(schema)]
    assert "e1.coefficients" in keys and "data.celeba.path" in keys
    for key in keys:
        assert f"| `{key}` |" in page, key
    stale = tmp_path / "README.md"
    stale.write_text(page.replace("| `e1.coefficients` |", "| `e1.coefs` |"))
    monkeypatch.setattr(config_docs, "PAGE", stale)
    assert config_docs.main(["--check"]) == 1


def test_the_seeds_fact_is_defined_once():
    """The schema's default of e2.fact is klvae.reference.E2_POST_FACT (the profiles leave it to the
    schema), and the strategies use that constant."""
    import yaml

    from klvae import reference
    from klvae.strategies import base

    schema = config_schema()
    assert schema["properties"]["e2"]["properties"]["fact"]["default"] == reference.E2_POST_FACT == base.FACT
    for profile in ("quick", "default", "paper"):
        assert "fact" not in (yaml.safe_load((REPO / "config" / f"{profile}.yaml").read_text()).get("e2") or {})


def test_an_old_bundles_config_keys_take_todays_names():
    """A results bundle made before e3.kl_weight was renamed e3.fact renders with today's schema."""
    from klvae.config import migrate

    old = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())
    old["e3"]["kl_weight"] = None
    assert migrate(old) == ["e3.kl_weight -> e3.fact (one name per scale: E3's KL weight is on the posts' "
                            "`fact` scale)"]
    assert "kl_weight" not in old["e3"] and old["e3"]["fact"] is None
    validate_config(old, SCHEMA)
    assert migrate(old) == []
    both = {"e3": {"kl_weight": 0.1, "fact": 0.2}}
    with pytest.raises(ValueError, match="e3.kl_weight and e3.fact are both set"):
        migrate(both)
