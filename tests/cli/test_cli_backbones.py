import json

from typer.testing import CliRunner

from shoulders.cli.main import app

runner = CliRunner()


def test_backbones_command_prints_every_registered_backbone():
    result = runner.invoke(app, ["backbones"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in ("efficientnet_lite0", "efficientnet_lite2", "mobilenet_v2", "convnext_tiny", "minilm_l6", "bert_base_en_uncased"):
        assert name in result.output
    assert "downloads" in result.output and "512 tokens" in result.output


def test_classify_prints_top_classes_with_names(tmp_path):
    from PIL import Image
    from skimage import data

    photo = tmp_path / "cat.jpg"
    Image.fromarray(data.chelsea()).save(photo, quality=92)
    result = runner.invoke(app, ["classify", str(photo), "--sample", "coffee", "--json", "--top-k", "3"])
    assert result.exit_code == 0, result.output
    cat, coffee = json.loads(result.output)
    assert cat["top"][0]["index"] in {281, 282, 285}
    assert coffee["top"][0]["name"] in {"espresso", "cup", "coffee mug"}
    assert len(cat["top"]) == 3


def test_classify_without_images_says_what_to_give():
    result = runner.invoke(app, ["classify"])
    assert result.exit_code != 0
    assert "at least one IMAGE" in result.output


def test_every_command_has_help():
    for command in ([], ["backbones"], ["classify"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage" in result.output
