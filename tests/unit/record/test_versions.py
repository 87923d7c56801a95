"""torch/torchvision versions: the pairing rule, a mismatch as one line, what ``twinrun doctor`` lists."""

from __future__ import annotations

import importlib

import pytest

from twinrun.errors import TwinrunError
from twinrun.record import versions
from twinrun.record.versions import TorchvisionMismatch, expected_torchvision, import_torchvision

NMS = "operator torchvision::nms does not exist"


@pytest.fixture
def mismatched(monkeypatch: pytest.MonkeyPatch):
    """Installed metadata of a pair from two releases, and torchvision failing as such a pair fails."""
    installed = {"torch": "2.14.1", "torchvision": "0.21.0", "hydra-core": "1.3.2"}
    monkeypatch.setattr(versions, "version", lambda name: installed.get(name))
    real_import = importlib.import_module

    def failing_import(name: str, package: str | None = None):
        if name.startswith("torchvision"):
            raise RuntimeError(NMS)
        return real_import(name, package)

    monkeypatch.setattr(versions.importlib, "import_module", failing_import)
    return installed


def test_the_pairing_rule() -> None:
    assert expected_torchvision("2.14.1+cu130") == "0.29"
    assert expected_torchvision("2.0.0") == "0.15"
    assert expected_torchvision("1.13.1") is None and expected_torchvision(None) is None


def test_a_mismatched_import_is_one_line_naming_both_versions(mismatched) -> None:
    with pytest.raises(TorchvisionMismatch) as error:
        import_torchvision("torchvision.datasets")
    message = str(error.value)
    assert message.startswith("torch 2.14.1 and torchvision 0.21.0 do not match; reinstall them together")
    assert "\n" not in message and isinstance(error.value, TwinrunError)


def test_other_import_errors_are_not_called_a_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: str, package: str | None = None):
        raise RuntimeError("CUDA driver too old")

    monkeypatch.setattr(versions.importlib, "import_module", broken)
    with pytest.raises(RuntimeError, match="CUDA driver too old"):
        import_torchvision()


def test_doctor_rows_find_the_mismatch_by_importing(mismatched) -> None:
    rows, problem = versions.doctor_rows()
    assert ("torch", "2.14.1") in rows and ("torchvision", "0.21.0") in rows
    assert ("numpy", "not installed") in rows  # the fake metadata knows only three
    assert problem is not None and "do not match" in problem


def test_doctor_rows_find_a_mismatch_by_version_when_the_import_works(monkeypatch) -> None:
    installed = {"torch": "2.14.1", "torchvision": "0.28.0"}
    monkeypatch.setattr(versions, "version", lambda name: installed.get(name))
    monkeypatch.setattr(versions, "import_torchvision", lambda module="torchvision": None)
    assert "torch 2.14.1 and torchvision 0.28.0 do not match" in (versions.doctor_rows()[1] or "")
    installed["torchvision"] = "0.29.1"  # control: the matching pair
    assert versions.doctor_rows()[1] is None
    del installed["torchvision"]
    assert "torchvision is not installed" in (versions.doctor_rows()[1] or "")


def test_the_trainers_data_and_pictures_fail_in_one_line(mismatched) -> None:
    from twinrun.trainers import data, images

    with pytest.raises(TorchvisionMismatch, match="do not match; reinstall them together"):
        data._torchvision_class("mnist")
    with pytest.raises(TorchvisionMismatch, match="do not match"):
        images._make_grid()
