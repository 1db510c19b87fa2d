"""Commands that need no run: listing variants."""

from runlocalai_bench.cli import main


def test_variants_command_lists_devices(capsys):
    assert main(["variants"]) == 0
    out = capsys.readouterr().out
    assert "torch-int8" in out and "cpu,cuda,mps" in out and "openvino-int8" in out
