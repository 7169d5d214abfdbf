"""The sweep summary is readable in any log: terminal width, else $COLUMNS, else all it needs."""

import io

from rich.console import Console

from orchestrator.progress import output_width, print_full_width, summary_table

ROW = {"task": "retrieval", "trials": 8, "completed": 3, "converged": 1, "pruned": 3,
       "stopped": "1 (1 chance_level)", "failed": 0, "best": "0.4280 (abc12345)",
       "best_config": "learning_rate=0.00141, weight_decay=0.00709, temperature=0.0712, "
                      "hard_negative_ratio=0.5, pooling=max, unfreeze_stages=2, unfreeze_lr_scale=0.135"}


def printed(monkeypatch, columns: str | None) -> list[str]:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    buffer = io.StringIO()
    console = Console(file=buffer, width=80)  # what rich falls back to in a log
    print_full_width(console, summary_table([ROW]))
    assert console.width == 80  # the console keeps its own width for everything else
    return buffer.getvalue().splitlines()


def test_in_a_log_without_columns_the_summary_is_as_wide_as_its_content(monkeypatch):
    lines = printed(monkeypatch, None)
    (row,) = [line for line in lines if line.startswith("│ retrieval ")]
    assert ROW["best_config"] in row and row.endswith("│")  # one line, nothing folded
    assert len(row) > 80


def test_columns_sets_the_width_when_there_is_no_terminal(monkeypatch):
    lines = printed(monkeypatch, "120")
    assert max(len(line) for line in lines) == 120
    assert not any(ROW["best_config"] in line for line in lines)  # folded to fit 120 columns


def test_a_terminal_reporting_no_size_counts_as_no_terminal(monkeypatch):
    # `ray exec` runs commands in a pseudo-terminal of 0x0 columns when its output is a log
    monkeypatch.delenv("COLUMNS", raising=False)
    console = Console(file=io.StringIO(), force_terminal=True, width=80)
    table = summary_table([ROW])
    assert console.is_terminal
    assert output_width(console, table) > 80
