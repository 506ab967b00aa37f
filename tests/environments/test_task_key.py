"""A task's environment key: the content of every file of the task, hashed once per process while the
files stay as they were, and anew as soon as one changes (even to the same size)."""

from cooperbench.data.dataset import Dataset
from cooperbench.environments import prepared


def test_the_key_follows_every_change_of_the_task_files(dataset_copy):
    task = Dataset(dataset_copy).task("memkv_task", 2)
    first = prepared.task_key(task)
    assert prepared.task_key(task) == first  # asked again, nothing changed
    patch = task.path / "feature1" / "feature.patch"
    text = patch.read_text()
    patch.write_text(text.replace("+", "-", 1))  # the same size, other content
    second = prepared.task_key(task)
    assert second != first
    patch.write_text(text)  # back as it was: the same key as before
    assert prepared.task_key(task) == first
    (task.path / "feature1" / "notes.txt").write_text("a new file")
    assert prepared.task_key(task) not in (first, second)
