"""The checkpoint loader (``utils.save_load.load`` over ``utils.safe_pickle``): hostile pickles are refused
before anything they ask for runs, and real checkpoints load exactly as ``paddle.load`` loads them.

Every hostile file is first unpickled with ``pickle.load`` in a child process to prove its payload is live
(it creates the marker); the project's loader must then refuse it with one line naming the file and the
forbidden object, and the marker must not appear. The command-line entry points are covered by
``test_safety_entry_points.py``.
"""

import collections
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

import hostile_files as hf
from paddlevideo.common import safe_pickle
from paddlevideo.common.save_load import CheckpointReadError, UnsafePickleError, load

TESTS = Path(__file__).resolve().parent


def _unpickle_in_child(path):
    """Full unpickling (what ``paddle.load`` does) in a child, so a payload runs outside the test process."""
    code = f"import pickle, sys; sys.path.insert(0, {str(TESTS)!r}); pickle.load(open({str(path)!r}, 'rb'))"
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)


def _assert_refused(path, *words):
    with pytest.raises(UnsafePickleError) as caught:
        load(str(path))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"'{path}' is not a plain checkpoint: it asks to ")
    assert message.endswith("refusing to load it. If you trust this file, pass --trust-pickle")
    for word in words:
        assert word in message, (word, message)
    return message


PAYLOADS = sorted(hf.payloads("m"))
PLACES = sorted(hf.placements(None))


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_checkpoint_is_refused_and_runs_nothing(tmp_path, payload, place):
    marker = tmp_path / "marker"
    obj, word = hf.payloads(marker)[payload]
    path = hf.write(tmp_path / "x.pdparams", hf.placements(obj)[place])
    _unpickle_in_child(path)
    assert marker.exists(), "the payload is not live: this test would prove nothing"
    marker.unlink()
    _assert_refused(path, word)
    assert not marker.exists()
    # trust_pickle is the explicit way out: it reads with paddle.load, and the payload runs
    if payload == "os.system" and place == "state_dict":
        load(str(path), trust_pickle=True)
        assert marker.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_the_issue_case_in_every_protocol_paddle_writes(tmp_path, protocol):
    """The real tiny model's state dict with one value replaced by an os.system call."""
    marker = tmp_path / "marker"
    state = {k: v.numpy() for k, v in paddle.nn.Linear(4, 3).state_dict().items()}
    state["weight"] = hf.Call(os.system, f"touch '{marker}'")
    path = hf.write(tmp_path / "x.pdparams", state, protocol)
    _assert_refused(path, "call os.system")
    assert not marker.exists()


def _numpy_state(dtype_args, array_state):
    """A protocol-2 pickle of numpy's own array recipe with the dtype arguments and the array state given."""
    core = "numpy._core.multiarray" if hasattr(np, "_core") else "numpy.core.multiarray"
    return b"".join([
        b"\x80\x02c", core.encode(), b"\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R",
        array_state(dtype_args), b"b."])


def _dtype_ops(args):
    return b"cnumpy\ndtype\n" + args + b"\x87R"


@pytest.mark.parametrize("name, data, word", [
    # numpy's own helpers with arguments numpy never writes
    ("object dtype", _numpy_state(b"X\x02\x00\x00\x00O8K\x00K\x01", lambda d: b"(K\x01K\x01\x85" + _dtype_ops(d)
                                  + b"(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb\x89]K\x01at"),
     "numpy.dtype with ('O8'"),
    ("structured dtype state", _numpy_state(b"X\x02\x00\x00\x00V8K\x00K\x01", lambda d: b"(K\x01K\x01\x85"
                                            + _dtype_ops(d) + b"\x89C\x08\x00\x00\x00\x00\x00\x00\x00\x00t"),
     "numpy.dtype with ('V8'"),
    ("dtype state with fields", _numpy_state(b"X\x02\x00\x00\x00f4K\x00K\x01", lambda d: b"(K\x01K\x01\x85"
                                             + _dtype_ops(d) + b"(K\x03X\x01\x00\x00\x00<N(X\x01\x00\x00\x00atN"
                                             b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89C\x04\x00\x00\x00\x00t"),
     "structured, object or flagged dtype"),
    ("array data is a list", _numpy_state(b"X\x02\x00\x00\x00f4K\x00K\x01", lambda d: b"(K\x01K\x01\x85"
                                          + _dtype_ops(d) + b"\x89]K\x01at"), "object array"),
    ("array data too short", _numpy_state(b"X\x02\x00\x00\x00f8K\x00K\x01", lambda d: b"(K\x01K\x04\x85"
                                          + _dtype_ops(d) + b"\x89C\x08\x00\x00\x00\x00\x00\x00\x00\x00t"),
     "from 8 bytes (needs 32)"),
    ("reconstruct another class", b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\ndtype\nK\x00\x85C\x01b"
                                  b"\x87R.", "call numpy's _reconstruct"),
    # BUILD on allowed objects
    ("array state twice", _numpy_state(b"X\x02\x00\x00\x00f4K\x00K\x01", lambda d: b"(K\x01K\x01\x85" + _dtype_ops(d)
                                       + b"\x89C\x04\x00\x00\x00\x00tb(K\x01K\x01\x85" + _dtype_ops(d)
                                       + b"\x89C\x04\x00\x00\x00\x00t"), "set the state of a numpy array twice"),
    ("OrderedDict state", b"\x80\x02ccollections\nOrderedDict\n)R}X\x01\x00\x00\x00aK\x01sb.",
     "hand state to an OrderedDict"),
    ("state to an allowed callable", b"\x80\x02c__builtin__\ntuple\n}X\x07\x00\x00\x00__doc__K\x01sb.",
     "hand state to builtins.tuple"),
    ("slot state to an allowed callable", b"\x80\x02c__builtin__\ntuple\nN}X\x05\x00\x00\x00_nameK\x01s\x86b.",
     "hand state to builtins.tuple"),
    # allowed callables with hostile arguments
    ("eval of code", b"\x80\x02c__builtin__\neval\nX\x03\x00\x00\x001+1\x85R.", "builtins.eval with ('1+1')"),
    ("codecs other than latin1", b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x04\x00\x00\x00zlib\x86R.",
     "_codecs.encode"),
    ("tuple of a dict", b"\x80\x02c__builtin__\ntuple\n}\x85R.", "builtins.tuple with ({})"),
    ("bytes of a size", b"\x80\x02c__builtin__\nbytes\nJ\x00\x00\x00\x40\x85R.", "builtins.bytes"),
    # other ways a pickle calls or names things
    ("persistent id", b"\x80\x02X\x01\x00\x00\x00xQ.", "persistent object"),
    ("INST opcode", b"(ios\nsystem\nX\x04\x00\x00\x00true.", "call os.system"),
    ("extension registry", b"\x80\x02\x82\x01.", None),
    ("the allowed callable as data", b"\x80\x02cnumpy\ndtype\n.", "object of type _Allowed"),
    ("a structure containing itself", b"\x80\x02]q\x00h\x00a.", "contains itself"),
])
def test_forbidden_constructions_are_refused(tmp_path, name, data, word):
    path = tmp_path / "x.pdopt"
    path.write_bytes(data)
    if word is None:  # copyreg's extension registry is empty: nothing to resolve, so unreadable
        with pytest.raises(CheckpointReadError):
            load(str(path))
        return
    _assert_refused(path, word)


def test_deep_nesting_is_refused_not_a_crash(tmp_path):
    path = tmp_path / "deep.pdparams"
    path.write_bytes(b"\x80\x02" + b"]" * 100_000 + b"a" * 99_999 + b".")
    _assert_refused(path, "nested more than")


def test_broken_files_are_one_line_read_errors(tmp_path):
    for name, data in (("truncated.pdparams", pickle.dumps({"w": np.ones(100)}, protocol=4)[:-40]),
                       ("empty.pdparams", b""), ("text.pdparams", b"hello\n"),
                       ("huge.pdparams", b"\x80\x04\x8e" + (1 << 50).to_bytes(8, "little") + b"xx")):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(CheckpointReadError) as caught:
            load(str(path))
        assert not isinstance(caught.value, UnsafePickleError)
        assert f"'{path}'" in str(caught.value) and "\n" not in str(caught.value)


# ---------------------------------------------------------------- real files load as paddle.load loads them

def assert_same(ours, theirs, where="root"):
    """Same types, keys in the same order, tensor names, dtypes, shapes and bytes."""
    assert type(ours) is type(theirs), (where, type(ours), type(theirs))
    if isinstance(theirs, paddle.Tensor):
        assert (ours.dtype, ours.shape) == (theirs.dtype, theirs.shape), where
        # a tensor without a saved name gets a fresh 'generated_tensor_<n>' in each load
        generated = ours.name.startswith("generated_tensor") and theirs.name.startswith("generated_tensor")
        assert generated or ours.name == theirs.name, (where, ours.name, theirs.name)
        assert ours.numpy().tobytes() == theirs.numpy().tobytes(), where
    elif isinstance(theirs, np.ndarray):
        assert (ours.dtype, ours.shape, ours.tobytes()) == (theirs.dtype, theirs.shape, theirs.tobytes()), where
    elif isinstance(theirs, dict):
        assert list(ours) == list(theirs), where
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert ours == theirs or (ours != ours and theirs != theirs), (where, ours, theirs)


def _both(path):
    for return_numpy in (False, True):
        assert_same(load(str(path), return_numpy=return_numpy), paddle.load(str(path), return_numpy=return_numpy))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny model after one AdamW step with a cosine schedule: its state and the project's .pdopt."""
    from conftest import K400_CONFIG, TINY_OVERRIDES
    from paddlevideo.modeling import build_model
    from paddlevideo.solver import build_optimizer
    from paddlevideo.tasks.run_files import portable_optimizer_state
    from paddlevideo.config import get_config
    from paddlevideo.common.save_load import save

    cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES, show=False)
    paddle.seed(0)
    model = build_model(cfg.MODEL)
    optimizer, _ = build_optimizer(cfg.OPTIMIZER, model, 4, 2)
    out = model([paddle.randn([2, 3, 4, 32, 32]), paddle.to_tensor([[1], [2]])], mode="train")
    out["loss"].backward()
    optimizer.step()
    folder = tmp_path_factory.mktemp("trained")
    save(model.state_dict(), str(folder / "m.pdparams"))
    save(optimizer.state_dict(), str(folder / "bare.pdopt"))  # PaddleVideo's .pdopt
    save({"optimizer": portable_optimizer_state(optimizer, model), "portable": True, "epoch": 1, "global_step": 1,
          "best_top1": np.float32(0.25), "seed": 1234, "scaler": None}, str(folder / "m.pdopt"))
    return folder, model


def test_project_checkpoints_and_optimizer_states_load_as_paddle_loads_them(trained):
    folder, model = trained
    for name in ("m.pdparams", "bare.pdopt", "m.pdopt"):
        _both(folder / name)
    for key, value in load(str(folder / "m.pdparams")).items():
        assert value.numpy().tobytes() == model.state_dict()[key].numpy().tobytes(), key


def test_timesformer_layout_and_paddle2_protocol2_pickles(tmp_path, shared_dir):
    """PaddleVideo's TimeSformer keys in their order (shapes cut to 4 per axis: the layout, not the size,
    is what the loader reads), saved as paddle.save does in protocols 2 and 4, and as numpy 1 names them."""
    rng = np.random.default_rng(0)
    rows = [line.split() for line in (shared_dir / "spec" / "timesformer_base_keys.txt").read_text().splitlines()
            if line.strip()]
    state = {key: paddle.to_tensor(rng.standard_normal([min(int(d), 4) for d in shape.strip("[]").split(",")])
                                   .astype(dtype)) for key, shape, dtype in rows}
    for protocol in (2, 4):
        path = tmp_path / f"p{protocol}.pdparams"
        paddle.save(state, str(path), protocol=protocol)
        _both(path)
        loaded = load(str(path))
        assert list(loaded) == [row[0] for row in rows]
    # Paddle 2.x ran on numpy 1, whose arrays pickle as numpy.core.multiarray._reconstruct
    old = tmp_path / "numpy1.pdparams"
    data = (tmp_path / "p2.pdparams").read_bytes()
    assert b"cnumpy._core.multiarray\n" in data or b"cnumpy.core.multiarray\n" in data
    old.write_bytes(data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))
    _both(old)


def test_large_parameter_chunks_and_dense_tensors(tmp_path):
    """Paddle's split layout for parameters over 2**30 bytes (built by hand: the real threshold needs 1 GiB),
    its eval('data', ...) form of a DenseTensor, numpy scalars, OrderedDicts and nested (name, array) pairs."""
    weight = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    flat = weight.reshape(-1)
    split = {"a": np.ones(3, np.float16), "w@@.0": flat[:10], "w@@.1": flat[10:20], "w@@.2": flat[20:],
             "UnpackBigParamInfor@@": {"w": {"OriginShape": (2, 3, 4), "slices": ["w@@.0", "w@@.1", "w@@.2"]}},
             "StructuredToParameterName@@": {"a": "p_a", "w": "p_w"}}
    hf.write(tmp_path / "split.pdparams", split, protocol=2)
    _both(tmp_path / "split.pdparams")
    joined = load(str(tmp_path / "split.pdparams"), return_numpy=True)
    assert list(joined) == ["a", "w"] and np.array_equal(joined["w"], weight)

    tensor = paddle.to_tensor(weight)
    dense = tensor.get_tensor()  # a DenseTensor, which paddle.save writes as eval('data', {'data': array})
    paddle.save({"outer": {"dense": dense, "n": np.int64(7), "f": np.float32(0.5), "b": np.bool_(True)},
                 "ordered": collections.OrderedDict(x=[1, 2.0, "s", None])}, str(tmp_path / "misc.pdopt"),
                protocol=2)
    _both(tmp_path / "misc.pdopt")
    misc = load(str(tmp_path / "misc.pdopt"), return_numpy=True)
    assert np.array_equal(misc["outer"]["dense"], weight) and misc["outer"]["n"] == 7
    assert type(misc["ordered"]) is collections.OrderedDict


def test_broken_big_parameter_layout_is_a_read_error(tmp_path):
    bad = {"w@@.0": np.ones(5, np.float32),
           "UnpackBigParamInfor@@": {"w": {"OriginShape": (1000, 1000), "slices": ["w@@.0"]}}}
    hf.write(tmp_path / "bad.pdparams", bad)
    with pytest.raises(CheckpointReadError, match="do not make its shape"):
        load(str(tmp_path / "bad.pdparams"))


def test_the_allow_list_is_the_documented_one():
    """A new entry must be added on purpose (with its argument check and a test above)."""
    names = {f"{module}.{name}" for module, name in safe_pickle.ALLOWED}
    assert names == {"numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
                     "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype", "numpy.ndarray",
                     "_codecs.encode", "collections.OrderedDict", "builtins.bytes", "builtins.tuple",
                     "builtins.eval", "__builtin__.bytes", "__builtin__.tuple", "__builtin__.eval"}
