"""A malformed deployment file is refused with one message that names the file and the defect."""

import json

import pytest

from efedllm.chain.deployment import Deployment
from efedllm.errors import EfedError


def write(tmp_path, data):
    path = tmp_path / "31337.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.fixture
def good(deployment):
    return deployment.to_json()


def test_missing_file(tmp_path):
    with pytest.raises(EfedError, match=r"no deployment file at .*deploy first"):
        Deployment.load(tmp_path / "1.json")


def test_not_json(tmp_path):
    with pytest.raises(EfedError, match="not valid JSON"):
        Deployment.load(write(tmp_path, "{oops"))


def test_missing_contract(tmp_path, good):
    del good["contracts"]["TrustScoring"]
    with pytest.raises(EfedError, match="missing field 'TrustScoring'"):
        Deployment.load(write(tmp_path, good))


def test_bad_address(tmp_path, good):
    good["contracts"]["RewardPool"]["address"] = "0x1234"
    with pytest.raises(EfedError, match="RewardPool has an invalid address"):
        Deployment.load(write(tmp_path, good))


def test_wrong_format_version(tmp_path, good):
    good["format"] = 99
    with pytest.raises(EfedError, match="unsupported format"):
        Deployment.load(write(tmp_path, good))


def test_bad_params(tmp_path, good):
    good["params"]["unbonding_period"] = 1
    with pytest.raises(EfedError, match="unbonding_period"):
        Deployment.load(write(tmp_path, good))


def test_not_an_object(tmp_path):
    with pytest.raises(EfedError, match="malformed"):
        Deployment.load(write(tmp_path, "[1, 2]"))
