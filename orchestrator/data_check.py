"""What a dataset directory holds, asked of its task before anything trains.

`orchestrate data --check DIR` prints the whole report; `orchestrate sweep` prints its summary
line and refuses a dataset with problems (or, unless allowed, with label leaks) before Ray
starts.
"""

from __future__ import annotations

from pathlib import Path

from tasks.base import MAX_LISTED_PROBLEMS, DataError, DataReport, Task


def inspect_dataset(task: Task, data_dir: Path) -> DataReport:
    """The task's report on data_dir; a task that raises DataError or returns None is wrapped."""
    try:
        report = task.check_data(data_dir)
    except DataError as error:
        return DataReport(layout="not recognised", problems=[str(error)])
    if report is None:  # a plug-in task that only raises on problems
        return DataReport(layout="not reported by the task")
    return report


def split_counts(report: DataReport) -> str:
    """'train 6000, val 1000, test 1000 images'."""
    if not report.splits:
        return "not reported"
    counts = ", ".join(f"{split} {count}" for split, count in report.splits.items())
    return f"{counts} {report.unit}"


def summary_line(report: DataReport) -> str:
    """One line for the sweep's log: the layout, the split sizes and where they came from."""
    sources = "; ".join(report.sources)
    return f"{report.layout}; {split_counts(report)}" + (f"; {sources}" if sources else "")


def report_lines(task_name: str, data_dir: Path, report: DataReport) -> list[str]:
    """The full report for `orchestrate data --check`: every problem (up to the cap, then a count)."""
    lines = [
        f"task:     {task_name}",
        f"data:     {data_dir}",
        f"layout:   {report.layout}",
        f"splits:   {split_counts(report)}",
        *(f"source:   {source}" for source in report.sources),
    ]
    for title, entries in (("problem", report.problems), ("leak", report.leaks)):
        if not entries:
            continue
        lines.append(f"{len(entries)} {title}{'s' if len(entries) > 1 else ''}:")
        lines += [f"  - {entry}" for entry in entries[:MAX_LISTED_PROBLEMS]]
        if len(entries) > MAX_LISTED_PROBLEMS:
            lines.append(f"  ... and {len(entries) - MAX_LISTED_PROBLEMS} more")
    if not report.problems and not report.leaks:
        lines.append("no problems found")
    return lines
