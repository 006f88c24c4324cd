"""The CLI's exit: TensorFlow's slow interpreter teardown is skipped, nothing else is."""

import subprocess
import sys
import textwrap
from pathlib import Path


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_fast_exit_keeps_the_code_the_output_and_the_at_exit_handlers(tmp_path: Path) -> None:
    marker = tmp_path / "handler-ran"
    result = _python(
        f"""
        import atexit, sys
        import tensorflow
        from shoulders.cli.main import leave
        atexit.register(lambda: open({str(marker)!r}, "w").write("yes"))
        print("buffered stdout")  # a pipe is block-buffered: lost unless flushed before os._exit
        sys.stderr.write("buffered stderr")
        leave(3)
        print("never printed")
        """
    )
    assert result.returncode == 3
    assert result.stdout == "buffered stdout\n"
    assert result.stderr.endswith("buffered stderr")
    assert marker.read_text() == "yes"


def test_a_message_exits_with_status_one_and_is_printed() -> None:
    result = _python(
        """
        from shoulders.cli.main import leave
        leave("error: something to fix")
        """
    )
    assert result.returncode == 1
    assert "error: something to fix" in result.stderr


def test_a_running_thread_gets_a_normal_exit_that_waits_for_it(tmp_path: Path) -> None:
    done = tmp_path / "thread-done"
    result = _python(
        f"""
        import threading, time
        import tensorflow
        from shoulders.cli.main import leave
        def work():
            time.sleep(0.5)
            open({str(done)!r}, "w").write("done")
        threading.Thread(target=work).start()
        leave(None)
        """
    )
    assert result.returncode == 0
    assert done.read_text() == "done"


def test_the_entry_point_exits_with_the_commands_status(tmp_path: Path) -> None:
    entry = [sys.executable, "-m", "shoulders.cli.main"]
    ok = subprocess.run([*entry, "backbones"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "efficientnet_lite0" in ok.stdout
    refused = subprocess.run([*entry, "train", str(tmp_path / "missing")], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    assert "missing" in refused.stderr
