"""scripts/export_onnx.py: the ONNX generator matches PyTorch at any image size."""
import pytest
import torch

from restoration.loading import load_generator
from scripts import export_onnx
from tests.conftest import save_tiny_dcdgan
from runtime.inference import run_padded

onnxruntime = pytest.importorskip("onnxruntime")

@pytest.fixture
def checkpoint_dir(tiny_dataroot, tmp_path):
    """A saved tiny dcdgan whose G_A has PyTorch's default (not near-zero) weights."""
    save_tiny_dcdgan(tiny_dataroot, tmp_path / "ck", "export")
    return tmp_path / "ck"


def test_onnx_export_matches_pytorch_on_two_sizes(checkpoint_dir, tmp_path):
    out = tmp_path / "g.onnx"
    status = export_onnx.main(["--name", "export", "--checkpoints_dir", str(checkpoint_dir),
                               "--out", str(out)])
    assert status == 0 and out.is_file()

    net, _ = load_generator(checkpoint_dir / "export" / "latest.pt", "AtoB")
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    torch.manual_seed(1)
    for h, w in [(48, 64), (37, 90)]:  # a multiple of 4 and an odd size that needs padding
        x = torch.rand(1, 3, h, w) * 2 - 1
        expected = run_padded(net, x)
        got = torch.from_numpy(session.run(None, {"image": x.numpy()})[0])
        assert got.shape == (1, 3, h, w)
        assert expected.std() > 0.05, "outputs too flat for the comparison to mean anything"
        assert torch.allclose(got, expected, atol=1e-4, rtol=0), float((got - expected).abs().max())


def test_export_reports_a_missing_checkpoint(tmp_path, caplog):
    status = export_onnx.main(["--name", "missing", "--checkpoints_dir", str(tmp_path)])
    assert status == 2
    assert "does not exist" in caplog.text


@pytest.mark.parametrize("extra,expected", [(["--opset", "99"], "cannot export with --opset 99"),
                                            (["--out", "{tmp}/file.txt/g.onnx"], "cannot write")])
def test_export_failures_are_one_line(checkpoint_dir, tmp_path, caplog, extra, expected):
    (tmp_path / "file.txt").write_text("in the way")
    extra = [arg.format(tmp=tmp_path) for arg in extra]
    status = export_onnx.main(["--name", "export", "--checkpoints_dir", str(checkpoint_dir),
                               "--out", str(tmp_path / "g.onnx"), *extra])
    assert status == 2
    message = caplog.records[-1].getMessage()
    assert expected in message and "\n" not in message
