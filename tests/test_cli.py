"""The command line: info, verify, convert, diff; exit codes and one-line errors."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

import devpersist
from devpersist.cli import EXIT_ERROR, EXIT_FAILED, EXIT_OK, EXIT_USAGE, main


@pytest.fixture
def model_file(tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    X = np.random.default_rng(0).random((40, 3))
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, X[:, 0] > 0.5)
    path = tmp_path / "model.dvp"
    devpersist.dump(model, path)
    return path, model, X


def test_info_table_and_json(model_file, capsys):
    path, _, _ = model_file
    assert main(["info", str(path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "RandomForestClassifier" in out and "format version 2" in out
    assert "estimators_[0].tree_.nodes" in out and "untrusted types: none" in out
    assert main(["info", "--json", str(path)]) == EXIT_OK
    meta = json.loads(capsys.readouterr().out)
    assert meta["format_version"] == 2 and meta["untrusted"] == []
    assert meta["environment"]["packages"]["scikit-learn"]


def test_verify_ok_and_corrupted(model_file, capsys):
    path, _, _ = model_file
    assert main(["verify", str(path)]) == EXIT_OK
    data = bytearray(path.read_bytes())
    meta = devpersist.info(bytes(data))
    entry = meta["arrays"][-1]  # packed (format 2): its offset counts from the pack's
    data[entry["offset"] + (meta["pack"]["offset"] if entry.get("packed") else 0)] ^= 0x10
    path.write_bytes(bytes(data))
    assert main(["verify", str(path)]) == EXIT_FAILED
    assert "checksum" in capsys.readouterr().err


def test_convert_pickle_and_joblib_with_a_warning(model_file, tmp_path, capsys):
    import joblib

    _, model, X = model_file
    sources = {"pkl": tmp_path / "m.pkl", "joblib": tmp_path / "m.joblib"}
    sources["pkl"].write_bytes(pickle.dumps(model))
    joblib.dump(model, sources["joblib"], compress=3)
    for name, src in sources.items():
        dst = tmp_path / f"{name}.dvp"
        assert main(["convert", str(src), str(dst), "--compress", "zlib"]) == EXIT_OK
        assert "runs any code" in capsys.readouterr().err
        assert np.array_equal(devpersist.load(dst).predict_proba(X), model.predict_proba(X))


def test_convert_skops(model_file, tmp_path):
    sio = pytest.importorskip("skops.io")
    _, model, X = model_file
    src = tmp_path / "m.skops"
    sio.dump(model, src)
    needed = sio.get_untrusted_types(file=src)
    with pytest.raises(devpersist.UntrustedTypeError):
        devpersist.convert(src, tmp_path / "x.dvp") if needed else pytest.skip("nothing untrusted")
    devpersist.convert(src, tmp_path / "s.dvp", trusted=needed)
    assert np.array_equal(devpersist.load(tmp_path / "s.dvp").predict(X), model.predict(X))


def test_convert_devpersist_to_numpy(tmp_path):
    torch = pytest.importorskip("torch")
    src, dst = tmp_path / "t.dvp", tmp_path / "n.dvp"
    devpersist.dump({"w": torch.arange(6.0).reshape(2, 3)}, src)
    assert main(["convert", str(src), str(dst), "--namespace", "numpy"]) == EXIT_OK
    meta = devpersist.info(dst)
    assert [a["namespace"] for a in meta["arrays"]] == ["numpy"]
    assert isinstance(devpersist.load(dst)["w"], np.ndarray)


def test_diff(model_file, tmp_path, capsys):
    path, model, _ = model_file
    same = tmp_path / "same.dvp"
    devpersist.dump(model, same)
    assert main(["diff", str(path), str(same)]) == EXIT_OK
    assert "no differences" in capsys.readouterr().out
    other = tmp_path / "other.dvp"
    devpersist.dump(model, other, precision="float16")
    assert main(["diff", str(path), str(other)]) == EXIT_FAILED
    assert "dtype" in capsys.readouterr().out


def test_errors_are_one_line_with_exit_codes(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.dvp")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No such file" in err and "Traceback" not in err
    (tmp_path / "x.pkl").write_bytes(pickle.dumps([1, 2]))
    assert main(["info", str(tmp_path / "x.pkl")]) == EXIT_ERROR
    assert "pickle" in capsys.readouterr().err
    assert main(["frobnicate"]) == EXIT_USAGE
    assert main([]) == EXIT_USAGE
    with pytest.raises(FileNotFoundError):
        main(["--debug", "info", str(tmp_path / "missing.dvp")])


def test_python_dash_m_entry_point(model_file):
    path, _, _ = model_file
    result = subprocess.run([sys.executable, "-m", "devpersist", "verify", str(path)],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0 and "OK" in result.stdout
