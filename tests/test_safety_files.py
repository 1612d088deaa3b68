"""Files a user brings besides checkpoints: videos with absurd headers, configs, lists, label lists, exported
models, Hugging Face folders, and input names that try to steer where a tool writes."""

import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from paddlevideo.loader.demo_data import write_avi

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PADDLEVIDEO_FAST_CPU_OPS": "0", "PYTHONPATH": str(REPO)}
ENV.pop("PADDLEVIDEO_DEBUG", None)
FRAMES = np.random.default_rng(0).integers(0, 255, (8, 48, 64, 3), dtype=np.uint8)


# ---------------------------------------------------------------- videos whose header claims absurd sizes

def _patch_avi(path, width=None, height=None, frames=None):
    """Write a real 64 x 48, 8-frame MJPG AVI, then overwrite its header's claims."""
    write_avi(path, FRAMES)
    data = bytearray(path.read_bytes())

    def payload(tag):
        at = data.find(tag)
        assert at >= 0, tag
        return at + 8

    avih, strh, strf = payload(b"avih"), payload(b"strh"), payload(b"strf")
    if frames is not None:
        struct.pack_into("<I", data, avih + 16, frames)
        struct.pack_into("<I", data, strh + 32, frames)
    if width is not None:
        struct.pack_into("<I", data, avih + 32, width)
        struct.pack_into("<I", data, avih + 36, height)
        struct.pack_into("<ii", data, strf + 4, width, height)
    path.write_bytes(bytes(data))
    return path


def _patch_mp4(path, side=None, frames=None):
    """Write a real 64 x 48, 8-frame MPEG-4 MP4 with OpenCV, then overwrite its track's claims."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (64, 48))
    for frame in FRAMES:
        writer.write(np.ascontiguousarray(frame))
    writer.release()
    data = bytearray(path.read_bytes())

    def box(kind):
        at = data.find(kind)
        assert at >= 4, kind
        size = struct.unpack_from(">I", data, at - 4)[0]
        return at + 4, at - 4 + size  # payload start, end

    if side is not None:
        start, end = box(b"tkhd")
        struct.pack_into(">II", data, end - 8, side << 16, side << 16)
        start, _ = box(b"stsd")
        struct.pack_into(">HH", data, start + 8 + 32, side, side)
    if frames is not None:
        start, _ = box(b"stsz")
        struct.pack_into(">I", data, start + 8, frames)
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def absurd_videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("absurd")
    return {
        "avi_100000x100000": _patch_avi(folder / "wide.avi", width=100_000, height=100_000),
        "avi_1e9_frames": _patch_avi(folder / "long.avi", frames=10**9),
        "mp4_60000x60000": _patch_mp4(folder / "wide.mp4", side=60_000),
        "mp4_1e9_frames": _patch_mp4(folder / "long.mp4", frames=10**9),
        "real_avi": _patch_avi(folder / "real.avi"),
        "real_mp4": _patch_mp4(folder / "real.mp4"),
    }


# The child opens every file with every backend under a 1.5 GB address-space limit: a buffer or frame table
# sized from the header would fail there (or kill the child); the refusal allocates nothing.
CHILD = textwrap.dedent("""
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))
    from paddlevideo.loader.decoders import VideoOpenError, open_video
    out = {}
    for name, path in json.loads(sys.argv[1]).items():
        for backend in ("decord", "pyav", "cv2"):
            try:
                with open_video(path, backend) as reader:
                    out[f"{name}/{backend}"] = ["ok", list(reader.get_frames([0, reader.num_frames - 1]).shape)]
            except VideoOpenError as err:
                out[f"{name}/{backend}"] = ["refused", str(err)]
    # this process's peak resident memory (ru_maxrss would carry the parent's peak across fork and exec)
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    out["peak_mb"] = int(status["VmHWM"].split()[0]) / 1024
    print(json.dumps(out))
""")


def test_absurd_headers_are_refused_before_any_allocation(absurd_videos):
    paths = {name: str(path) for name, path in absurd_videos.items()}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(paths)], capture_output=True, text=True,
                          timeout=120, env=ENV, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, path in paths.items():
        for backend in ("decord", "pyav", "cv2"):
            status, detail = out[f"{name}/{backend}"]
            if name.startswith("real"):
                assert status == "ok" and detail == [2, 48, 64, 3], (name, backend, detail)
                continue
            assert status == "refused", (name, backend, detail)
            assert detail.startswith(f"{path}: its ") and "\n" not in detail, detail
            claim = ("100000 x 100000" if "100000" in name else "60000 x 60000" if "60000" in name
                     else "1000000000 frames")
            assert claim in detail and "refusing to open it" in detail, detail
    assert out["peak_mb"] < 600, out["peak_mb"]


def test_without_the_check_decord_dies_on_the_frame_count(absurd_videos):
    """The control: decord opening the 10**9-frame AVI itself, under the same limit, does not survive it."""
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20)); import decord; "
            f"decord.VideoReader({str(absurd_videos['avi_1e9_frames'])!r}, num_threads=1); print('opened')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "opened" not in proc.stdout, (proc.returncode, proc.stderr[-500:])


# ---------------------------------------------------------------- configs, lists and label lists

@pytest.mark.parametrize("text, words", [
    ("MODEL: !!python/object/apply:os.system ['touch {marker}']\n", ["python/object/apply:os.system"]),
    ("MODEL: !!python/name:os.system\n", ["python/name:os.system"]),
    ("MODEL: !!python/object/new:subprocess.Popen [['touch', '{marker}']]\n", ["python/object/new"]),
    ("a: &a ['x','x','x','x','x','x','x','x','x','x']\n" + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcdefgh", "bcdefghi")) + "MODEL: *i\n",
     ["expands to more than"]),
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", ["nesting is too deep"]),
])
def test_a_config_builds_no_object_and_cannot_blow_up(tmp_path, text, words):
    import time

    from paddlevideo.config import ConfigError, get_config

    marker = tmp_path / "marker"
    path = tmp_path / "hostile.yaml"
    path.write_text(text.replace("{marker}", str(marker)))
    start = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        get_config(str(path), [], show=False)
    assert time.monotonic() - start < 10  # the alias bomb is refused, not expanded
    message = str(caught.value)
    assert f"'{path}'" in message and "\n" not in message
    for word in words:
        assert word in message, message
    assert not marker.exists()


def test_lists_and_label_lists_are_data(tmp_path):
    """Shell syntax in a list or label list is a file name or a class name, never a command; a label list
    that is not text is one line."""
    from paddlevideo.loader.decoders import VideoOpenError, open_video
    from paddlevideo.loader.list_files import read_list_file
    from paddlevideo.deploy.errors import PredictError
    from paddlevideo.loader.labels import load_label_names

    marker = tmp_path / "marker"
    hostile = [f"$(touch {marker}).mp4", f"`touch {marker}`.mp4", f"a.mp4; touch {marker}"]
    listing = tmp_path / "train.list"
    listing.write_text("".join(f"{name} {i}\n" for i, name in enumerate(hostile)))
    items = read_list_file(str(listing), str(tmp_path))
    assert [item["filename"] for item in items] == [str(tmp_path / name) for name in hostile]
    for item in items:
        with pytest.raises(VideoOpenError, match="no such file"):
            open_video(item["filename"])
    labels = tmp_path / "labels.txt"
    labels.write_text(f"0 $(touch {marker})\n1 __import__('os').system('touch {marker}')\n")
    assert load_label_names(str(labels)) == {0: f"$(touch {marker})", 1: f"__import__('os').system('touch {marker}')"}
    assert not marker.exists()
    labels.write_bytes(b"0 abseiling\n1 \xff\xfe not text\n")
    with pytest.raises(PredictError, match="is not UTF-8 text"):
        load_label_names(str(labels))
    labels.write_bytes(b"0 abseiling\n1 \xff\xfe\x00 not text\n")
    with pytest.raises(PredictError, match="is a binary file"):
        load_label_names(str(labels))


# ---------------------------------------------------------------- exported models

def _onnx_with_external_data(folder, location):
    """A model ``y = x + w`` whose ``w`` (4 floats) is stored at ``location`` (relative to ``folder``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.zeros(4, np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [weight])
    path = folder / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _onnx_escapes(tmp_path):
    """``{case: model path}`` of models whose ``w`` lies outside their folder, and the secret file it names."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    cases = {}
    for name, location in {"parent": "../secret.bin", "absolute": str(secret), "symlink": "link.bin"}.items():
        folder = tmp_path / name
        folder.mkdir()
        if name == "symlink":
            (folder / "link.bin").symlink_to(secret)
        cases[name] = (_onnx_with_external_data(folder, location), location)
    return cases


def test_onnx_external_data_stays_in_the_model_folder(tmp_path):
    import onnxruntime as ort

    from paddlevideo.deploy.predictor import build_predictor
    from paddlevideo.deploy.model_files import UnsafeModelFileError, check_model_file

    for name, (path, location) in _onnx_escapes(tmp_path).items():
        with pytest.raises(UnsafeModelFileError) as caught:
            build_predictor(str(path), "onnxruntime")
        assert str(caught.value).startswith(f"'{path}': tensor 'w' keeps its data in '{location}', outside")
    inside = tmp_path / "inside"
    inside.mkdir()
    (inside / "w.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    model = _onnx_with_external_data(inside, "w.bin")
    check_model_file(model)  # data beside the model: accepted, and it is what ONNX Runtime reads
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"x": np.ones(4, np.float32)})[0], [1, 2, 3, 4])


# OpenVINO runs in a child: loaded into the test process it breaks later tests that fork
# (tests/test_deploy_openvino.py).
OPENVINO_CHILD = textwrap.dedent(r"""
    import json, sys
    import numpy as np
    from paddlevideo.deploy.predictor import build_predictor
    from paddlevideo.deploy.backends.openvino_runtime import import_openvino, read_model
    from paddlevideo.deploy.model_files import UnsafeModelFileError

    args = json.loads(sys.argv[1])
    ov = import_openvino()
    out = {}
    real = args["folder"] + "/real.xml"
    ov.save_model(ov.convert_model(args["inside"]), real)
    out["real"] = ov.Core().compile_model(ov.Core().read_model(real), "CPU")(np.ones(4, np.float32))[0].tolist()
    text = open(real).read()
    head, body = text.split("\n", 1) if text.startswith("<?xml") else ("", text)
    laughs = "".join('<!ENTITY l%d "%s">' % (i, ("&l%d;" % (i - 1)) * 10) for i in range(1, 10))
    variants = {
        "laughs": '<!DOCTYPE net [<!ENTITY l0 "lol">' + laughs + ']>\n' + body.replace('name="', 'name="&l9;', 1),
        "external": '<!DOCTYPE net [<!ENTITY x SYSTEM "file://' + args["folder"] + '/secret.bin">]>\n'
                    + body.replace('name="', 'name="&x;', 1),
    }
    for name, document in variants.items():
        path = args["folder"] + "/" + name + ".xml"
        open(path, "w").write(head + "\n" + document if head else document)
        open(path[:-4] + ".bin", "wb").write(open(real[:-4] + ".bin", "rb").read())
        args["refused"][name] = path
    for name, path in args["refused"].items():
        try:
            if path.endswith(".onnx"):
                read_model(ov.Core(), path)
            else:
                build_predictor(path, "openvino")
            out[name] = "loaded"
        except UnsafeModelFileError as err:
            out[name] = str(err)
    print(json.dumps(out))
""")


def test_openvino_refuses_doctypes_and_onnx_data_outside_the_folder(tmp_path):
    escapes = _onnx_escapes(tmp_path)
    inside = tmp_path / "inside"
    inside.mkdir()
    (inside / "w.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    args = {"folder": str(tmp_path), "inside": str(_onnx_with_external_data(inside, "w.bin")),
            "refused": {f"onnx_{name}": str(path) for name, (path, _) in escapes.items()}}
    proc = subprocess.run([sys.executable, "-c", OPENVINO_CHILD, json.dumps(args)], capture_output=True, text=True,
                          timeout=300, env=ENV, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["real"] == [1, 2, 3, 4]
    for name, (path, location) in escapes.items():
        assert out[f"onnx_{name}"].startswith(f"'{path}': tensor 'w' keeps its data in '{location}'"), out
    for name in ("laughs", "external"):
        assert out[name] == (f"'{tmp_path / name}.xml' declares a document type (<!DOCTYPE ...>), which an "
                             "OpenVINO model never has: it can expand entities or read other files; refusing to "
                             "load it"), out[name]


def test_hugging_face_folder_never_runs_its_code_or_an_untrusted_pickle(tmp_path):
    """A folder whose config.json names remote code (auto_map) converts with the code never imported; a
    pytorch_model.bin that calls os.system is refused by name unless --trust-pickle."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from test_convert import _hf_model

    import hostile_files as hf

    marker = tmp_path / "marker"
    folder = tmp_path / "hf"
    _hf_model().save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForVideoClassification": "modeling_evil.EvilModel",
                          "AutoConfig": "modeling_evil.EvilConfig"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_evil.py").write_text(f"import os\nos.system(\"touch '{marker}'\")\n")
    from helpers import load_tool
    from paddlevideo.modeling.convert import read_hf_folder
    from paddlevideo.common.save_load import UnsafePickleError

    out = tmp_path / "out.pdparams"
    assert load_tool("tools/convert_checkpoint.py").main(["--from", "hf", str(folder), "-o", str(out)]) == 0
    assert out.is_file() and not marker.exists()

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((folder / "config.json").read_text())
    torch.save({"w": hf.Call(os.system, f"touch '{marker}'")}, bad / "pytorch_model.bin")
    with pytest.raises(UnsafePickleError) as caught:
        read_hf_folder(str(bad))
    assert str(caught.value) == (f"'{bad / 'pytorch_model.bin'}' is not a plain checkpoint: it asks to call "
                                 "os.system; refusing to load it. If you trust this file, pass --trust-pickle")
    assert not marker.exists()


# ---------------------------------------------------------------- where tools write

NAMES = ["../../escape.avi", "...avi", "new\nline.avi", ".avi", "tab\there.avi"]


def test_output_names_stay_inside_the_output_folder(tmp_path):
    from paddlevideo.common.files import output_name
    from paddlevideo.visualization.annotate import annotated_path
    from helpers import load_tool

    out = tmp_path / "out"
    folders = load_tool("tools/visualize_attention.py").output_folders(NAMES, str(out))
    feature_path = load_tool("tools/extract_features.py").feature_path
    for name, folder in zip(NAMES, folders):
        for path in (folder, annotated_path(out, name), feature_path(str(out), name)):
            assert os.path.dirname(os.path.normpath(path)) == str(out), (name, path)
            assert "\n" not in path and "\t" not in path and os.path.basename(path) not in ("", ".", "..")
    assert output_name("a/b/c.mp4") == "c.mp4" and output_name("..") == "_.." and output_name("x\ny") == "x_y"


def test_extract_features_writes_only_inside_its_output_folder(tmp_path):
    """The real tool on a folder of real clips with hostile names: every file lands in -o."""
    import paddle

    from conftest import K400_CONFIG, TINY_OVERRIDES
    from paddlevideo.modeling import build_model
    from paddlevideo.config import get_config
    from paddlevideo.config import save_config

    cfg = get_config(str(K400_CONFIG), TINY_OVERRIDES, show=False)
    save_config(cfg, tmp_path / "tiny.yaml")
    paddle.save(build_model(cfg.MODEL).state_dict(), str(tmp_path / "w.pdparams"))
    videos = tmp_path / "work" / "in"
    videos.mkdir(parents=True)
    for name in ("...avi", "new\nline.avi", "plain.avi"):
        write_avi(videos / name, FRAMES)
    out = tmp_path / "work" / "out"
    before = {p for p in tmp_path.rglob("*")}
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "extract_features.py"), "-c",
                           str(tmp_path / "tiny.yaml"), "-w", str(tmp_path / "w.pdparams"), "--input_file", str(videos),
                           "-o", str(out)],
                          capture_output=True, text=True, timeout=300, env=ENV, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    new = {p for p in tmp_path.rglob("*")} - before
    assert new == {out, out / "...avi.npy", out / "new_line.npy", out / "plain.npy"}, new
